package loadgen

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestBucketRoundTrip(t *testing.T) {
	// Every value falls inside the range of its own bucket, and buckets are
	// monotonic.
	values := []uint64{0, 1, 31, 32, 33, 63, 64, 65, 100, 1000, 1 << 20, 123456789, 1<<40 - 1}
	prev := -1
	for _, v := range values {
		i := bucket(v)
		lo, hi := bucketRange(i)
		if v < lo || v > hi {
			t.Errorf("bucket(%d) = %d with range [%d, %d]: value outside", v, i, lo, hi)
		}
		if i < prev {
			t.Errorf("bucket(%d) = %d, below the previous value's bucket %d", v, i, prev)
		}
		prev = i
	}
	if got := bucket(1 << 62); got != numBuckets-1 {
		t.Errorf("bucket(2^62) = %d, want the last bucket %d", got, numBuckets-1)
	}
}

func TestQuantiles(t *testing.T) {
	tests := []struct {
		name   string
		values []time.Duration
		q      float64
		want   time.Duration
	}{
		{"single", []time.Duration{time.Millisecond}, 0.5, time.Millisecond},
		{"p50 of 1..100 ms", ms1to100(), 0.5, 50 * time.Millisecond},
		{"p99 of 1..100 ms", ms1to100(), 0.99, 99 * time.Millisecond},
		{"p100 is the max", ms1to100(), 1, 100 * time.Millisecond},
		{"small exact values", []time.Duration{1, 2, 3, 4}, 0.5, 2},
		{"negative counts as 0", []time.Duration{-5}, 0.5, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Hist
			for _, v := range tt.values {
				h.Record(v)
			}
			got := h.Snapshot().Quantile(tt.q)
			if !within(got, tt.want, 0.035) {
				t.Errorf("Quantile(%v) = %v, want %v ± 3.5%%", tt.q, got, tt.want)
			}
		})
	}
}

func TestQuantileEmpty(t *testing.T) {
	var h Hist
	s := h.Snapshot()
	if got := s.Quantile(0.99); got != 0 {
		t.Errorf("empty Quantile = %v, want 0", got)
	}
	if got := s.Mean(); got != 0 {
		t.Errorf("empty Mean = %v, want 0", got)
	}
}

// TestAgainstSorted compares quantiles with exact ones over random
// log-normal-ish latencies.
func TestAgainstSorted(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var h Hist
	var all []time.Duration
	for range 100000 {
		v := time.Duration(rng.ExpFloat64() * float64(2*time.Millisecond))
		h.Record(v)
		all = append(all, v)
	}
	slices.Sort(all)
	s := h.Snapshot()
	for _, q := range []float64{0.5, 0.9, 0.95, 0.99, 0.999} {
		exact := all[int(q*float64(len(all)))-1]
		if got := s.Quantile(q); !within(got, exact, 0.035) {
			t.Errorf("Quantile(%v) = %v, exact %v", q, got, exact)
		}
	}
	if got, want := time.Duration(s.Max), all[len(all)-1]; got != want {
		t.Errorf("Max = %v, want %v", got, want)
	}
}

func TestMergeAndSub(t *testing.T) {
	shards := NewShards(4)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for v := range 1000 {
				shards.For(i).Record(time.Duration(v+1) * time.Microsecond)
			}
		}()
	}
	wg.Wait()
	s := shards.Snapshot()
	if s.Total != 8000 {
		t.Fatalf("merged Total = %d, want 8000", s.Total)
	}
	if got := time.Duration(s.Max); got != time.Millisecond {
		t.Errorf("merged Max = %v, want 1ms", got)
	}
	if got := s.Quantile(0.5); !within(got, 500*time.Microsecond, 0.035) {
		t.Errorf("merged p50 = %v, want 500µs", got)
	}
	shards.For(0).Record(time.Second)
	d := shards.Snapshot().Sub(s)
	if d.Total != 1 {
		t.Fatalf("interval Total = %d, want 1", d.Total)
	}
	if got := d.Quantile(0.5); !within(got, time.Second, 0.035) {
		t.Errorf("interval p50 = %v, want 1s", got)
	}
}

func ms1to100() []time.Duration {
	var v []time.Duration
	for i := 1; i <= 100; i++ {
		v = append(v, time.Duration(i)*time.Millisecond)
	}
	return v
}

func within(got, want time.Duration, rel float64) bool {
	d := float64(got - want)
	return d <= rel*float64(want) && -d <= rel*float64(want)
}

func BenchmarkRecord(b *testing.B) {
	var h Hist
	for i := range b.N {
		h.Record(time.Duration(i))
	}
}

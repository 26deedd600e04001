package loadgen

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// subBits sets the histogram's precision: each power of two is split into
// 2^subBits linear buckets, so a recorded value is off by at most
// 1/2^subBits (3 %) of itself.
const subBits = 5

const (
	subCount = 1 << subBits
	// maxExp bounds recordable values to 2^maxExp ns (about 18 minutes);
	// larger values land in the last bucket.
	maxExp     = 40
	numBuckets = (maxExp-subBits+1)*subCount + subCount
)

// Hist is a log-linear histogram of durations in nanoseconds, in the spirit
// of HdrHistogram with 3 % precision. Record is safe for concurrent use
// (atomic adds), so many connections can share one Hist and a progress
// reporter can Snapshot it while they record. The zero value is ready.
type Hist struct {
	counts [numBuckets]atomic.Uint64
	total  atomic.Uint64
	sum    atomic.Uint64
	max    atomic.Uint64
}

// bucket returns the index of the bucket holding v.
func bucket(v uint64) int {
	if v < subCount {
		return int(v)
	}
	n := bits.Len64(v) // >= subBits+1
	shift := n - subBits - 1
	if shift > maxExp-subBits {
		return numBuckets - 1
	}
	mant := v >> uint(shift) // in [subCount, 2*subCount)
	return (shift+1)*subCount + int(mant-subCount)
}

// bucketRange returns the smallest and largest value of bucket i.
func bucketRange(i int) (lo, hi uint64) {
	if i < subCount {
		return uint64(i), uint64(i)
	}
	shift := uint(i/subCount - 1)
	mant := uint64(i%subCount + subCount)
	return mant << shift, (mant+1)<<shift - 1
}

// Record adds one duration; negative durations count as 0.
func (h *Hist) Record(d time.Duration) {
	v := uint64(max(d, 0))
	h.counts[bucket(v)].Add(1)
	h.total.Add(1)
	h.sum.Add(v)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// Snapshot is a point-in-time copy of a Hist that can be merged,
// subtracted and queried.
type Snapshot struct {
	Counts [numBuckets]uint64
	Total  uint64
	Sum    uint64
	Max    uint64
}

// Snapshot copies the histogram. Concurrent Records may be half-included
// (a count without its sum); that is harmless for reporting.
func (h *Hist) Snapshot() *Snapshot {
	s := new(Snapshot)
	for i := range h.counts {
		s.Counts[i] = h.counts[i].Load()
	}
	s.Total = h.total.Load()
	s.Sum = h.sum.Load()
	s.Max = h.max.Load()
	return s
}

// Merge adds o into s.
func (s *Snapshot) Merge(o *Snapshot) {
	for i := range s.Counts {
		s.Counts[i] += o.Counts[i]
	}
	s.Total += o.Total
	s.Sum += o.Sum
	s.Max = max(s.Max, o.Max)
}

// Sub returns the values recorded in s but not in an earlier snapshot prev
// of the same histogram. Max is s's (a maximum cannot be subtracted), so
// it is an upper bound for the interval.
func (s *Snapshot) Sub(prev *Snapshot) *Snapshot {
	d := new(Snapshot)
	for i := range s.Counts {
		d.Counts[i] = s.Counts[i] - prev.Counts[i]
	}
	d.Total = s.Total - prev.Total
	d.Sum = s.Sum - prev.Sum
	d.Max = s.Max
	return d
}

// Quantile returns the value at quantile q (0 < q <= 1): the midpoint of
// the bucket holding it, capped by the exact maximum. 0 when empty.
func (s *Snapshot) Quantile(q float64) time.Duration {
	var total uint64
	for _, c := range s.Counts {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	rank = min(max(rank, 1), total)
	var seen uint64
	for i, c := range s.Counts {
		seen += c
		if seen >= rank {
			lo, hi := bucketRange(i)
			v := lo + (hi-lo)/2
			if s.Max > 0 && v > s.Max {
				v = s.Max
			}
			return time.Duration(v)
		}
	}
	return time.Duration(s.Max)
}

// Mean returns the average recorded value.
func (s *Snapshot) Mean() time.Duration {
	if s.Total == 0 {
		return 0
	}
	return time.Duration(s.Sum / s.Total)
}

// Shards spreads recording over several Hists so that thousands of
// connections do not all hit the same cache lines; Snapshot merges them.
type Shards []Hist

// NewShards returns n histograms (n >= 1).
func NewShards(n int) Shards { return make(Shards, max(n, 1)) }

// For returns the shard used by connection i.
func (s Shards) For(i int) *Hist { return &s[i%len(s)] }

// Snapshot merges all shards.
func (s Shards) Snapshot() *Snapshot {
	out := new(Snapshot)
	for i := range s {
		out.Merge(s[i].Snapshot())
	}
	return out
}

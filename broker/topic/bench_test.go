package topic

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchIndex holds 10,000 distinct subscriptions: 70% exact, 20% with '+',
// 10% with '#', over fleet-like topics.
func benchIndex() (*Index[int], [][]byte) {
	ix := NewIndex[int](nil, nil)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 10000 {
		var f string
		switch dev, site := i%2000, i%50; {
		case i%10 < 7:
			f = fmt.Sprintf("site/%d/dev/%d/%s", site, dev, []string{"temp", "cmd", "state"}[i%3])
		case i%10 < 9:
			f = fmt.Sprintf("site/%d/dev/+/%s", site, []string{"temp", "cmd", "state"}[i%3])
		default:
			f = fmt.Sprintf("site/%d/dev/%d/#", site, dev)
		}
		ix.Subscribe(i, Subscription{Filter: f})
	}
	topics := make([][]byte, 256)
	for i := range topics {
		topics[i] = fmt.Appendf(nil, "site/%d/dev/%d/%s", r.IntN(50), r.IntN(2000), []string{"temp", "cmd", "state"}[r.IntN(3)])
	}
	return ix, topics
}

func BenchmarkMatch10kSubscriptions(b *testing.B) {
	ix, topics := benchIndex()
	dst := make([]Match[int], 0, 1024)
	b.ReportAllocs()
	var n int
	for i := 0; b.Loop(); i++ {
		dst = ix.Match(topics[i%len(topics)], dst[:0])
		n += len(dst)
	}
	b.ReportMetric(float64(n)/float64(b.N), "matches/op")
}

func BenchmarkMatchFanOut1000(b *testing.B) {
	ix := NewIndex[int](nil, nil)
	for i := range 1000 {
		ix.Subscribe(i, Subscription{Filter: "broadcast/all"})
	}
	topic := []byte("broadcast/all")
	dst := make([]Match[int], 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		dst = ix.Match(topic, dst[:0])
	}
}

func BenchmarkMatchShared(b *testing.B) {
	ix := NewIndex(func(k int) bool { return k%3 != 0 }, nil)
	for i := range 100 {
		ix.Subscribe(i, Subscription{Filter: "jobs/+", Group: "workers"})
	}
	topic := []byte("jobs/1")
	dst := make([]Match[int], 0, 8)
	b.ReportAllocs()
	for b.Loop() {
		dst = ix.Match(topic, dst[:0])
	}
}

func BenchmarkMatchParallel(b *testing.B) {
	ix, topics := benchIndex()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		dst := make([]Match[int], 0, 1024)
		for i := 0; pb.Next(); i++ {
			dst = ix.Match(topics[i%len(topics)], dst[:0])
		}
	})
}

func BenchmarkSubscribeUnsubscribe(b *testing.B) {
	ix, _ := benchIndex()
	filters := make([]string, 1024)
	for i := range filters {
		filters[i] = fmt.Sprintf("churn/%d/dev/%d/+", i%16, i)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		f := filters[i%len(filters)]
		ix.Subscribe(i, Subscription{Filter: f, QoS: 1})
		ix.Unsubscribe(i, "", f)
	}
}

func BenchmarkRetainedMatch10k(b *testing.B) {
	r := NewRetained[int]()
	for i := range 10000 {
		r.Set(fmt.Sprintf("site/%d/dev/%d/state", i%50, i), i)
	}
	for _, filter := range []string{"site/7/dev/+/state", "site/7/#", "site/7/dev/357/state", "#"} {
		b.Run(filter, func(b *testing.B) {
			b.ReportAllocs()
			var n int
			for b.Loop() {
				r.Match(filter, func(string, int) bool { n++; return true })
			}
			b.ReportMetric(float64(n)/float64(b.N), "matches/op")
		})
	}
}

func BenchmarkMemoryPerSubscription(b *testing.B) {
	for b.Loop() {
		b.ReportMetric(heapPerSubscription(10000), "B/sub")
	}
}

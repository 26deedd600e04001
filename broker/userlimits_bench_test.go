package broker

import (
	"testing"
	"time"

	"github.com/fleetmq/fleetmq/broker/authz"
)

// BenchmarkRateBucketTake is what a PUBLISH of a user with a publish rate
// pays for it (a rate high enough never to refuse): the bucket's lock and
// refill. Parallel runs share one bucket, as a user's connections do.
func BenchmarkRateBucketTake(b *testing.B) {
	limits := &authz.UserLimits{PublishRate: &authz.PublishRate{MessagesPerSecond: 1_000_000_000, Burst: 1_000_000_000}}
	b.Run("one", func(b *testing.B) {
		var rb rateBucket
		rb.set(limits, time.Now())
		b.ReportAllocs()
		for b.Loop() {
			if !rb.take(time.Now()) {
				b.Fatal("refused")
			}
		}
	})
	b.Run("shared", func(b *testing.B) {
		var rb rateBucket
		rb.set(limits, time.Now())
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if !rb.take(time.Now()) {
					b.Error("refused")
					return
				}
			}
		})
	})
}

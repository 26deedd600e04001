package store_test

import (
	"testing"

	"github.com/fleetmq/fleetmq/broker/outbox"
	"github.com/fleetmq/fleetmq/broker/store"
)

// BenchmarkCommit64 measures one group commit of 64 deliveries written and
// 64 deleted (what QoS 1 with 64 in flight asks of the store).
func BenchmarkCommit64(b *testing.B) {
	st, err := store.Open(b.TempDir(), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	m := message("bench/q1", string(make([]byte, 64)), 1)
	seq := uint64(0)
	done := make(chan error, 1)
	b.ResetTimer()
	for range b.N {
		for range 64 {
			seq++
			st.PutDelivery("sub", store.Delivery{Delivery: outbox.Delivery{Msg: m, QoS: 1, Seq: seq}})
			if seq > 64 {
				st.DeleteDelivery("sub", seq-64)
			}
		}
		st.Sync(func(err error) { done <- err })
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
}

package broker

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/fleetmq/fleetmq/broker/internal/mqtttest"
	"github.com/fleetmq/fleetmq/broker/packets"
	"github.com/fleetmq/fleetmq/broker/store"
)

// BenchmarkPublishQoS1Durable is BenchmarkPublishQoS1 with a persistent
// subscriber (clean session off): in memory, and with the store on disk,
// where every message is written for the subscriber and deleted at its
// PUBACK, and the publisher's PUBACK waits for the group commit. Each
// publisher (1 or 8 connections) keeps 64 PUBLISHes unacknowledged.
// Compare msgs/s of the two in one run:
// go test -run '^$' -bench PublishQoS1Durable ./broker/
func BenchmarkPublishQoS1Durable(b *testing.B) {
	for _, bc := range []struct {
		mode string
		pubs int
	}{{"memory", 1}, {"disk", 1}, {"memory", 8}, {"disk", 8}} {
		mode := bc.mode
		b.Run(fmt.Sprintf("pubs=%d/store=%s", bc.pubs, mode), func(b *testing.B) {
			opts := Options{AllowAnonymous: true, SysInterval: -1, Limits: Limits{MaxPendingBytes: 256 << 20, MaxQueuedMessages: 1 << 20}}
			if mode == "disk" {
				st, err := store.Open(b.TempDir(), store.Options{})
				if err != nil {
					b.Fatal(err)
				}
				opts.Store = st
			}
			s, err := New(opts)
			if err != nil {
				b.Fatal(err)
			}
			addr := mqtttest.Serve(b, s)
			benchQoS1(b, s, addr, bc.pubs)
			if bs, ok := opts.Store.(*store.Bolt); ok {
				st := bs.Stats()
				b.ReportMetric(float64(st.Ops)/float64(max(st.Commits, 1)), "writes/commit")
				b.ReportMetric(st.CommitSeconds*1e6/float64(max(st.Commits, 1)), "µs/commit")
			}
		})
	}
}

func benchQoS1(b *testing.B, s *Server, addr string, pubs int) {
	subConn := persistentSubscriber(b, addr, "dsub", "bench/q1")
	defer subConn.Close()
	received := ackAll(subConn)
	conns := make([]net.Conn, pubs)
	for i := range conns {
		conns[i] = rawSubscriber(b, addr, fmt.Sprint("pub", i), "nothing", 0)
		defer conns[i].Close()
	}
	b.ResetTimer()
	begin := time.Now()
	var wg sync.WaitGroup
	for i, conn := range conns {
		n := b.N / pubs
		if i == 0 {
			n += b.N % pubs
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			publishWindow(b, conn, n, 64)
		}()
	}
	wg.Wait()
	for received.Load() < int64(b.N) {
		// A dropped delivery never arrives: fail instead of waiting forever.
		if d := s.Stats().MessagesDropped; d > 0 {
			b.Fatalf("%d deliveries dropped; %d of %d received", d, received.Load(), b.N)
		}
		time.Sleep(100 * time.Microsecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(begin).Seconds(), "msgs/s")
}

// publishWindow sends n QoS 1 PUBLISHes keeping up to window unacknowledged
// and returns when all are acknowledged.
func publishWindow(b *testing.B, conn net.Conn, n, window int) {
	acks := make(chan struct{}, window)
	go func() {
		buf := make([]byte, 0, 64)
		for {
			if _, _, err := packets.ReadPacket(conn, buf, 0); err != nil {
				close(acks)
				return
			}
			acks <- struct{}{}
		}
	}()
	p := packets.Publish{QoS: 1, Topic: []byte("bench/q1"), Payload: make([]byte, 64)}
	out := make([]byte, 0, 256)
	outstanding := 0
	for i := range n {
		if outstanding == window {
			<-acks
			outstanding--
		}
		p.PacketID = uint16(i%65535) + 1
		out = p.Append(out[:0], packets.V311)
		if _, err := conn.Write(out); err != nil {
			b.Error(err)
			return
		}
		outstanding++
	}
	for ; outstanding > 0; outstanding-- {
		<-acks
	}
}

// persistentSubscriber is rawSubscriber at QoS 1 with clean session off.
func persistentSubscriber(b testing.TB, addr, id, filter string) net.Conn {
	return subscribeRaw(b, addr, packets.Connect{Version: packets.V311, ClientID: id, KeepAlive: 60}, filter, 1)
}

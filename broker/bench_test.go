package broker

import (
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fleetmq/fleetmq/broker/internal/mqtttest"
	"github.com/fleetmq/fleetmq/broker/packets"
)

// benchServer runs a broker for a benchmark. MaxPendingBytes is large so
// that QoS 0 fan-out measures delivery, not slow-consumer drops, and
// MaxQueuedMessages so that QoS 1 messages a publisher sends ahead of the
// subscriber's inflight window (maxInflight) are queued, not dropped.
func benchServer(b *testing.B) (*Server, string) {
	b.Helper()
	s, err := New(Options{AllowAnonymous: true, SysInterval: -1, Limits: Limits{MaxPendingBytes: 256 << 20, MaxQueuedMessages: 1 << 20}})
	if err != nil {
		b.Fatal(err)
	}
	return s, mqtttest.Serve(b, s)
}

// rawSubscriber connects over TCP with a clean session, subscribes to
// filter and returns the connection after SUBACK.
func rawSubscriber(b testing.TB, addr, id, filter string, qos byte) net.Conn {
	return subscribeRaw(b, addr, packets.Connect{Version: packets.V311, ClientID: id, CleanStart: true}, filter, qos)
}

// subscribeRaw sends cp and a SUBSCRIBE to filter, and returns the
// connection after CONNACK and SUBACK.
func subscribeRaw(b testing.TB, addr string, cp packets.Connect, filter string, qos byte) net.Conn {
	b.Helper()
	id := cp.ClientID
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatalf("dial: %v", err)
	}
	out := cp.Append(nil)
	sp := packets.Subscribe{PacketID: 1, Subscriptions: []packets.Subscription{{Filter: filter, SubOptions: packets.SubOptions{QoS: qos}}}}
	out = sp.Append(out, packets.V311)
	if _, err := conn.Write(out); err != nil {
		b.Fatalf("write: %v", err)
	}
	var buf [64]byte
	for _, want := range []packets.Type{packets.CONNACK, packets.SUBACK} {
		first, _, err := packets.ReadPacket(conn, buf[:0], 0)
		if err != nil || packets.Type(first>>4) != want {
			b.Fatalf("%s: got packet type %d, err %v; want %v", id, first>>4, err, want)
		}
	}
	return conn
}

// countingWriter counts bytes for io.Copy.
type countingWriter struct{ n atomic.Int64 }

func (w *countingWriter) Write(p []byte) (int, error) { w.n.Add(int64(len(p))); return len(p), nil }

// BenchmarkFanOutQoS0 publishes QoS 0 messages from one raw connection to
// N raw subscriber connections that read and discard, end to end over
// loopback. deliveries/s counts messages written to subscribers.
func BenchmarkFanOutQoS0(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprint("subs=", n), func(b *testing.B) {
			srv, addr := benchServer(b)
			counters := make([]*countingWriter, n)
			for i := range n {
				conn := rawSubscriber(b, addr, fmt.Sprint("s", i), "bench/+", 0)
				counters[i] = new(countingWriter)
				go io.Copy(counters[i], conn)
				b.Cleanup(func() { conn.Close() })
			}
			pubConn := rawSubscriber(b, addr, "pub", "nothing", 0)
			defer pubConn.Close()
			msg := (&packets.Publish{Topic: []byte("bench/x"), Payload: make([]byte, 64)}).Append(nil, packets.V311)
			const batch = 64
			var burst []byte
			for range batch {
				burst = append(burst, msg...)
			}

			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			dropped0 := srv.Stats().MessagesDropped
			b.ResetTimer()
			begin := time.Now()
			sent := 0
			for sent < b.N {
				k := min(batch, b.N-sent)
				if _, err := pubConn.Write(burst[:k*len(msg)]); err != nil {
					b.Fatal(err)
				}
				sent += k
			}
			// Wait until every message reached every subscriber or was
			// dropped by the slow-consumer bound (a publisher on loopback can
			// outrun a subscriber; drops are reported, not waited for).
			want := int64(b.N*len(msg)) * int64(n)
			dropped := func() int64 { return srv.Stats().MessagesDropped - dropped0 }
			for {
				var got int64
				for _, c := range counters {
					got += c.n.Load()
				}
				if got+dropped()*int64(len(msg)) >= want {
					break
				}
				time.Sleep(100 * time.Microsecond)
			}
			b.StopTimer()
			delivered := int64(b.N*n) - dropped()
			b.ReportMetric(float64(delivered)/time.Since(begin).Seconds(), "deliveries/s")
			b.ReportMetric(float64(dropped()), "dropped")
		})
	}
}

// BenchmarkRouteQoS0 measures the routing path alone — match, merge,
// encode into each subscriber's output buffer — by calling Server.route the
// way handlePublish does, with N subscribers attached over real
// connections that drain their output. allocs/op is the routing path's.
func BenchmarkRouteQoS0(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprint("subs=", n), func(b *testing.B) {
			s, addr := benchServer(b)
			for i := range n {
				conn := rawSubscriber(b, addr, fmt.Sprint("s", i), "bench/+", 0)
				go io.Copy(io.Discard, conn)
				b.Cleanup(func() { conn.Close() })
			}
			topic := []byte("bench/x")
			payload := make([]byte, 64)
			r := &routed{}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				*r = routed{topic: topic, now: time.Now()}
				r.pub = packets.Publish{Topic: topic, Payload: payload}
				if got := s.route(r); got != n {
					b.Fatalf("routed to %d, want %d", got, n)
				}
			}
		})
	}
}

// ackAll reads QoS 1 deliveries on a 3.1.1 subscriber connection until it
// closes, acknowledging and counting each.
func ackAll(conn net.Conn) *atomic.Int64 {
	var received atomic.Int64
	go func() {
		buf := make([]byte, 0, 256)
		var p packets.Publish
		for {
			first, body, err := packets.ReadPacket(conn, buf, 0)
			if err != nil {
				return
			}
			if err := p.Decode(packets.V311, first&0x0F, body); err != nil {
				return
			}
			a := packets.Ack{Type: packets.PUBACK, PacketID: p.PacketID}
			if _, err := conn.Write(a.Append(buf[:0:0], packets.V311)); err != nil {
				return
			}
			received.Add(1)
		}
	}()
	return &received
}

// BenchmarkPublishQoS1 publishes QoS 1 messages end to end over loopback:
// a publisher keeping up to 64 PUBLISHes unacknowledged, one subscriber at
// QoS 1 acknowledging each delivery.
func BenchmarkPublishQoS1(b *testing.B) {
	_, addr := benchServer(b)
	subConn := rawSubscriber(b, addr, "sub", "bench/q1", 1)
	defer subConn.Close()
	received := ackAll(subConn)
	pubConn := rawSubscriber(b, addr, "pub", "nothing", 0)
	defer pubConn.Close()

	const window = 64
	acks := make(chan struct{}, window)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 0, 64)
		for {
			if _, _, err := packets.ReadPacket(pubConn, buf, 0); err != nil {
				return
			}
			acks <- struct{}{}
		}
	}()
	p := packets.Publish{QoS: 1, Topic: []byte("bench/q1"), Payload: make([]byte, 64)}
	out := make([]byte, 0, 256)
	b.ReportAllocs()
	b.ResetTimer()
	begin := time.Now()
	outstanding := 0
	for i := range b.N {
		if outstanding == window {
			<-acks
			outstanding--
		}
		p.PacketID = uint16(i%65535) + 1
		out = p.Append(out[:0], packets.V311)
		if _, err := pubConn.Write(out); err != nil {
			b.Fatal(err)
		}
		outstanding++
	}
	for ; outstanding > 0; outstanding-- {
		<-acks
	}
	for received.Load() < int64(b.N) {
		time.Sleep(100 * time.Microsecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(begin).Seconds(), "msgs/s")
	pubConn.Close()
	wg.Wait()
}

// BenchmarkIdleConnections measures what an idle client costs: N
// connections, each with one subscription, then nothing.
//
// Method: raise RLIMIT_NOFILE; force GC three times and read
// runtime.MemStats; open N raw 3.1.1 connections (CONNECT, one SUBSCRIBE
// to a topic of its own, read CONNACK and SUBACK) and wait until the broker
// counts them; let the flushers exit; force GC three times and read
// MemStats again. bytes/conn is the growth of HeapInuse+StackInuse over N.
// Both ends of each TCP connection live in this process, so the same
// measurement is taken for N bare loopback pairs held open without any
// goroutine (tcp-pair-bytes/conn); broker-bytes/conn is the difference:
// the broker's own cost per idle client (goroutine stack, client, session,
// subscription). Run it once: go test -run x -bench IdleConnections
// -benchtime 1x ./broker/
func BenchmarkIdleConnections(b *testing.B) {
	n := 10000
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil {
		want := uint64(2*n + 1000)
		if lim.Cur < want {
			nl := syscall.Rlimit{Cur: want, Max: max(lim.Max, want)}
			if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &nl) != nil {
				nl = syscall.Rlimit{Cur: lim.Max, Max: lim.Max}
				syscall.Setrlimit(syscall.RLIMIT_NOFILE, &nl)
			}
			syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
		}
		if avail := (int(lim.Cur) - 1000) / 2; avail < n {
			n = avail
		}
	}
	if n < 100 {
		b.Skipf("RLIMIT_NOFILE %d leaves room for %d connections", lim.Cur, n)
	}

	pair, _ := measure(func() func() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		server := make([]net.Conn, 0, n)
		client := make([]net.Conn, 0, n)
		for range n {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			sc, err := ln.Accept()
			if err != nil {
				b.Fatal(err)
			}
			client, server = append(client, c), append(server, sc)
		}
		return func() {
			for i := range client {
				client[i].Close()
				server[i].Close()
			}
			ln.Close()
		}
	})

	s, addr := benchServer(b)
	total, stack := measure(func() func() {
		conns := make([]net.Conn, 0, n)
		for i := range n {
			conns = append(conns, rawSubscriber(b, addr, fmt.Sprint("idle-", i), fmt.Sprint("idle/", i), 1))
		}
		mqtttest.WaitFor(b, "the broker to count every connection", func() bool {
			st := s.Stats()
			return st.ClientsConnected == int64(n) && st.Subscriptions == n
		})
		time.Sleep(200 * time.Millisecond) // flushers exit once their buffer is written
		return func() {
			for _, c := range conns {
				c.Close()
			}
		}
	})
	b.ReportMetric(float64(n), "conns")
	b.ReportMetric(total/float64(n), "bytes/conn")
	b.ReportMetric(pair/float64(n), "tcp-pair-bytes/conn")
	b.ReportMetric((total-pair)/float64(n), "broker-bytes/conn")
	b.ReportMetric(stack/float64(n), "stack-bytes/conn")
}

// measure returns the growth of HeapInuse+StackInuse, and of StackInuse
// alone, caused by what open sets up, measured before the returned cleanup
// runs.
func measure(open func() (cleanup func())) (total, stack float64) {
	inuse := func() (float64, float64) {
		var ms runtime.MemStats
		for range 3 {
			runtime.GC()
		}
		runtime.ReadMemStats(&ms)
		return float64(ms.HeapInuse + ms.StackInuse), float64(ms.StackInuse)
	}
	t0, s0 := inuse()
	cleanup := open()
	// An idle connection is parked in the poller after parkAfter of silence;
	// until then it still has its goroutine. Measure idle, not just-connected.
	time.Sleep(parkAfter + 500*time.Millisecond)
	t1, s1 := inuse()
	cleanup()
	return t1 - t0, s1 - s0
}

package broker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/fleetmq/fleetmq/broker"
	"github.com/fleetmq/fleetmq/broker/internal/mqtttest"
	"github.com/fleetmq/fleetmq/broker/packets"
)

// Hostile clients that try to exhaust the broker's memory through one
// connection (or many unauthenticated ones). The memory tests do not call
// t.Parallel: they measure the heap of the whole test process.

// heapAlloc is the live heap after a full collection.
func heapAlloc() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// dialRaw opens a TCP connection that the test drives byte by byte.
func dialRaw(t testing.TB, addr string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, mqtttest.Timeout)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// expectEOF waits for the broker to close conn, skipping whatever it sent
// before (at most one packet, returned; first is 0 when none came).
func expectEOF(t testing.TB, conn net.Conn, what string) (first byte, body []byte) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(mqtttest.Timeout))
	for n := 0; ; n++ {
		f, b, err := packets.ReadPacket(conn, nil, 0)
		switch {
		case err == nil && n == 0:
			first, body = f, b
			continue
		case err == nil:
			t.Fatalf("%s: got a second packet (type %d), want the connection closed", what, f>>4)
		case isTimeoutErr(err):
			t.Fatalf("%s: connection still open after %v", what, mqtttest.Timeout)
		}
		return first, body
	}
}

func isTimeoutErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// A client that trickles its CONNECT a byte at a time must not keep the
// connection (and its read buffer) forever: the connect timeout counts
// from accept, not from the last byte.
func TestHostileConnectTrickle(t *testing.T) {
	t.Parallel()
	srv, addr := start(t, broker.Options{Limits: broker.Limits{ConnectTimeout: 1}})
	conn := dialRaw(t, addr)
	cp := mqtttest.V5("trickle")
	cp.Will = &packets.Will{Topic: "w", Payload: bytes.Repeat([]byte{'x'}, 4000)}
	b := cp.Append(nil)
	go func() {
		for i := range b {
			if _, err := conn.Write(b[i : i+1]); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond) // 4 KB take minutes
		}
	}()
	if first, _ := expectEOF(t, conn, "trickled CONNECT"); first != 0 {
		t.Errorf("got packet type %d before the close, want none", first>>4)
	}
	mqtttest.WaitFor(t, "ConnectTimeouts 1", func() bool { return srv.Stats().ConnectTimeouts == 1 })
	mqtttest.WaitFor(t, "no unauthenticated connection left", func() bool { return srv.Stats().Unauthenticated == 0 })

	// A prompt client is unaffected.
	mqtttest.MustConnect(t, addr, mqtttest.V5("prompt")).Ping()
}

// A first packet larger than MaxConnectPacketSize is refused as soon as
// its header is read: v5 gets CONNACK 0x95, 3.1.1 (which has no such code)
// a close. Before, the broker buffered up to MaxPacketSize (1 MiB) for
// every unauthenticated socket.
func TestHostileConnectTooLarge(t *testing.T) {
	srv, addr := startDefault(t)
	const perVersion = 32
	// A 900 KiB CONNECT (under MaxPacketSize), of which 256 KiB are sent.
	big := func(cp *packets.Connect) []byte {
		cp.Will = &packets.Will{Topic: "w", Payload: make([]byte, 900<<10)}
		return cp.Append(nil)[:256<<10]
	}
	v5, v311 := big(mqtttest.V5("big5")), big(mqtttest.V311("big3", true))

	before := heapAlloc()
	var conns []net.Conn
	var wg sync.WaitGroup
	for i := range 2 * perVersion {
		conn := dialRaw(t, addr)
		conns = append(conns, conn)
		b := v5
		if i%2 == 1 {
			b = v311
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn.SetWriteDeadline(time.Now().Add(mqtttest.Timeout))
			conn.Write(b) // fails once the broker has closed it
		}()
	}
	for i, conn := range conns {
		first, body := expectEOF(t, conn, "oversized CONNECT")
		if i%2 == 1 {
			if first != 0 {
				t.Fatalf("3.1.1: got packet type %d, want the connection closed without an answer", first>>4)
			}
			continue
		}
		p := mqtttest.Decode(packets.V5, first, body)
		if p.Connack == nil || p.Connack.ReasonCode != packets.PacketTooLarge {
			t.Fatalf("v5: got %v, want CONNACK 0x95", p)
		}
	}
	wg.Wait()
	grew := heapAlloc() - before
	runtime.KeepAlive(v5)
	runtime.KeepAlive(v311)
	if grew > 4<<20 {
		t.Errorf("heap grew %d KiB for %d oversized CONNECTs, want at most 4096 KiB", grew>>10, 2*perVersion)
	}
	if got := srv.Stats().ConnectTooLarge; got != 2*perVersion {
		t.Errorf("ConnectTooLarge: got %d, want %d", got, 2*perVersion)
	}
	mqtttest.WaitFor(t, "no unauthenticated connection left", func() bool { return srv.Stats().Unauthenticated == 0 })

	// A CONNECT just under the bound still gets in.
	cp := mqtttest.V5("fits")
	cp.Will = &packets.Will{Topic: "w", Payload: make([]byte, 60<<10)}
	mqtttest.MustConnect(t, addr, cp).Ping()
}

// Sockets that never send CONNECT are capped: past MaxUnauthenticated a
// new one is closed at accept. The count stays exact whichever way a
// connection leaves the unauthenticated phase.
func TestHostileUnauthenticatedLimit(t *testing.T) {
	t.Parallel()
	const max = 4
	srv, addr := start(t, broker.Options{Limits: broker.Limits{MaxUnauthenticated: max}})
	unauth := func(want int64) {
		t.Helper()
		mqtttest.WaitFor(t, fmt.Sprint("Unauthenticated == ", want), func() bool { return srv.Stats().Unauthenticated == want })
	}

	silent := make([]net.Conn, max)
	for i := range silent {
		silent[i] = dialRaw(t, addr)
	}
	unauth(max)
	extra := dialRaw(t, addr)
	expectEOF(t, extra, "socket over MaxUnauthenticated")
	if got := srv.Stats().UnauthenticatedRefused; got != 1 {
		t.Errorf("UnauthenticatedRefused: got %d, want 1", got)
	}

	// Every way out of the phase frees a place: accepted, refused,
	// protocol error, closed by the client.
	accepted := silent[0]
	accepted.Write(mqtttest.V311("ok", true).Append(nil))
	if first, _, err := packets.ReadPacket(accepted, nil, 0); err != nil || packets.Type(first>>4) != packets.CONNACK {
		t.Fatalf("CONNECT: got type %d, err %v; want CONNACK", first>>4, err)
	}
	refused := silent[1]
	long := mqtttest.V311(string(bytes.Repeat([]byte{'i'}, 300)), true) // over MaxClientIDLength
	refused.Write(long.Append(nil))
	expectEOF(t, refused, "refused CONNECT")
	bad := silent[2]
	bad.Write(packets.AppendEmpty(nil, packets.PINGREQ)) // not CONNECT first
	expectEOF(t, bad, "PINGREQ before CONNECT")
	silent[3].Close()
	unauth(0)

	// The places freed are usable again.
	mqtttest.MustConnect(t, addr, mqtttest.V5("after")).Ping()
	for range max {
		dialRaw(t, addr)
	}
	unauth(max)

	// Shutdown ends the waiting ones too.
	ctx, cancel := context.WithTimeout(context.Background(), mqtttest.Timeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if got := srv.Stats().Unauthenticated; got != 0 {
		t.Errorf("Unauthenticated after Shutdown: got %d, want 0", got)
	}
}

// A v5 client that publishes QoS 1 where it may not and never reads made
// the broker buffer a PUBACK with a reason string per message, ~150 MiB a
// second. Now the connection's reader stops taking packets once its output
// passes MaxPendingBytes, so the client's own writes stall instead.
// The client keeps its default socket buffers: a tiny SO_RCVBUF on
// loopback (MSS 32 KiB) can wedge both ends in retransmission backoff,
// which stalls the writes without the broker ever throttling.
func TestHostileReplyBacklog(t *testing.T) {
	const pending = 256 << 10
	srv, addr := start(t, broker.Options{Limits: broker.Limits{MaxPendingBytes: pending}})
	sub := mqtttest.MustConnect(t, addr, mqtttest.V5("bystander-sub"))
	sub.Sub("ok", 1)
	pubr := mqtttest.MustConnect(t, addr, mqtttest.V5("bystander-pub"))

	conn := dialRaw(t, addr)
	conn.Write(mqtttest.V5("flood").Append(nil))
	conn.SetReadDeadline(time.Now().Add(mqtttest.Timeout))
	if first, _, err := packets.ReadPacket(conn, nil, 0); err != nil || packets.Type(first>>4) != packets.CONNACK {
		t.Fatalf("CONNECT: got type %d, err %v; want CONNACK", first>>4, err)
	}
	// Each 13-byte PUBLISH earns a ~45-byte PUBACK 0x90 with a reason.
	var chunk []byte
	for i := 0; len(chunk) < 64<<10; i++ {
		p := packets.Publish{Topic: []byte("$SYS/x"), QoS: 1, PacketID: uint16(i%65535 + 1)}
		chunk = p.Append(chunk, packets.V5)
	}
	const total = 16 << 20

	before := heapAlloc()
	// The broker stopping to read shows as a write that does not finish
	// once it counted the throttle. A stall before that is only a slow
	// broker (a loaded CI machine): keep writing, from where the partial
	// write stopped so the stream stays whole.
	sent, off := 0, 0
	giveUp := time.Now().Add(4 * mqtttest.Timeout)
	for sent < total && time.Now().Before(giveUp) {
		conn.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := conn.Write(chunk[off:])
		sent += n
		if off += n; off == len(chunk) {
			off = 0
		}
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("write after %d KiB: %v; want the broker to stop reading, not to close", sent>>10, err)
			}
			if srv.Stats().ReadsThrottled > 0 {
				break
			}
		}
	}
	grew := heapAlloc() - before
	t.Logf("wrote %d KiB of PUBLISH before the broker stopped reading; heap grew %d KiB", sent>>10, grew>>10)
	if grew > 4*pending+2<<20 {
		t.Errorf("heap grew %d KiB for a client that does not read, want at most %d KiB", grew>>10, (4*pending+2<<20)>>10)
	}
	if srv.Stats().ReadsThrottled == 0 {
		t.Error("ReadsThrottled: got 0, want the flooding reader throttled")
	}

	// Everyone else is served meanwhile; closing the flood frees it all.
	bystanderWorks(t, sub, pubr, "ok")
	conn.Close()
	mqtttest.WaitFor(t, "the flooding client gone", func() bool { return srv.Stats().ClientsConnected == 2 })
}

// A subscriber that never acknowledges gets at most MaxInflight QoS 1
// messages outstanding, whatever Receive Maximum it announces (3.1.1 has
// none): the window was 65,535, so every message the session held was
// written to a client that would never acknowledge it.
func TestHostileInflightWindow(t *testing.T) {
	t.Parallel()
	const window, n = 10, 50
	_, addr := start(t, broker.Options{Limits: broker.Limits{MaxInflight: window}})
	v5max := mqtttest.V5("v5-max")
	v5max.Props.ReceiveMaximum, v5max.Props.HasReceiveMaximum = 65535, true
	v5small := mqtttest.V5("v5-small")
	v5small.Props.ReceiveMaximum, v5small.Props.HasReceiveMaximum = 3, true
	subs := []struct {
		name string
		cp   *packets.Connect
		want int
	}{
		{"3.1.1", mqtttest.V311("v3", true), window},
		{"5.0 without Receive Maximum", mqtttest.V5("v5"), window},
		{"5.0 Receive Maximum 65535", v5max, window},
		{"5.0 Receive Maximum 3", v5small, 3},
	}
	clients := make([]*mqtttest.Client, len(subs))
	for i, s := range subs {
		clients[i] = mqtttest.MustConnect(t, addr, s.cp)
		clients[i].Sub("window", 1)
	}
	p := mqtttest.MustConnect(t, addr, mqtttest.V5("pub"))
	for range n {
		p.Pub("window", "m", 1)
	}
	for i, s := range subs {
		c := clients[i]
		var first uint16
		for k := range s.want {
			pp := c.ExpectPublish()
			if k == 0 {
				first = pp.PacketID
			}
		}
		c.ExpectNone(quiet) // the window is full
		// Acknowledging one lets exactly one more through.
		c.WriteAck(packets.PUBACK, first)
		c.ExpectPublish()
		c.ExpectNone(quiet)
		t.Logf("%s: %d unacknowledged, then one more per PUBACK", s.name, s.want)
	}
}

// A v5 client announcing Topic Alias Maximum 65535 made the broker keep a
// copy of every topic it delivered to it (179 MiB against 22 MiB without
// aliases in the measured attack). The broker now uses at most
// TopicAliasMaximumOut aliases and 4 KiB of topics per connection; other
// topics go without an alias.
func TestHostileOutboundTopicAliases(t *testing.T) {
	const (
		n        = 20000
		maxAlias = 16
	)
	// Room for every delivery, so none is dropped for a slow reader.
	srv, addr := start(t, broker.Options{Limits: broker.Limits{TopicAliasMaximumOut: maxAlias, MaxPendingBytes: 64 << 20}})

	// The subscriber reads everything and notes the aliases it is given.
	cp := mqtttest.V5("aliases")
	cp.Props.TopicAliasMaximum, cp.Props.HasTopicAliasMaximum = 65535, true
	c := mqtttest.MustConnect(t, addr, cp)
	c.Sub("t/#", 0)
	var (
		mu         sync.Mutex
		received   int
		aliases    = map[uint16]bool{}
		aliasBytes int
	)
	go func() { // from here on the only user of c
		for {
			p, ok := c.Next(time.Minute)
			if !ok {
				return
			}
			if p.Publish == nil {
				continue
			}
			mu.Lock()
			received++
			if a := p.Publish.Props.TopicAlias; p.Publish.Props.HasTopicAlias {
				if !aliases[a] && len(p.Publish.Topic) > 0 {
					aliasBytes += len(p.Publish.Topic)
				}
				aliases[a] = true
			}
			mu.Unlock()
		}
	}()

	// 20,000 distinct topics of 500 bytes each: the 4 KiB bound, not the
	// count, limits the aliases to 8.
	var burst []byte
	for i := range n {
		topic := fmt.Sprintf("t/%0498d", i)
		burst = pub(topic, "x", 0).Append(burst, packets.V5)
	}
	p := mqtttest.MustConnect(t, addr, mqtttest.V5("pub"))
	dropped := srv.Stats().MessagesDropped
	before := heapAlloc()
	p.Write(burst)
	p.Ping() // every PUBLISH routed, so encoded for the subscriber
	mqtttest.WaitFor(t, "every delivery received or dropped", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return int64(received)+srv.Stats().MessagesDropped-dropped == n
	})
	grew := heapAlloc() - before
	runtime.KeepAlive(burst)

	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d delivered, %d aliases over %d bytes of topic; heap grew %d KiB", received, len(aliases), aliasBytes, grew>>10)
	if len(aliases) == 0 {
		t.Error("no topic alias used, want some")
	}
	if len(aliases) > maxAlias {
		t.Errorf("%d distinct topic aliases used, want at most %d", len(aliases), maxAlias)
	}
	if aliasBytes > 4<<10 {
		t.Errorf("aliases were set for %d bytes of topics, want at most 4096", aliasBytes)
	}
	if grew > 2<<20 {
		t.Errorf("heap grew %d KiB after delivering %d distinct topics, want at most 2048 KiB", grew>>10, n)
	}
}

package broker_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/fleetmq/fleetmq/broker"
	"github.com/fleetmq/fleetmq/broker/internal/mqtttest"
	"github.com/fleetmq/fleetmq/broker/packets"
)

// A subscriber that stops reading must not stall its publisher or make the
// broker buffer without bound: once MaxPendingBytes of output wait for it,
// further QoS 0 messages to it are dropped and counted.
func TestSlowConsumer(t *testing.T) {
	t.Parallel()
	const (
		pending = 32 << 10
		n       = 8000
		size    = 1024
	)
	srv, err := broker.New(broker.Options{AllowAnonymous: true, SysInterval: -1, Limits: broker.Limits{MaxPendingBytes: pending}})
	if err != nil {
		t.Fatal(err)
	}
	// Small fixed socket buffers on the broker's side, so what the kernel
	// holds is small and what the test sees is the broker's own bound.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := mqtttest.ServeListener(t, srv, smallBufListener{ln})

	// The slow subscriber: subscribes, then never reads again.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.(*net.TCPConn).SetReadBuffer(16 << 10)
	b := mqtttest.V311("slow", true).Append(nil)
	s := packets.Subscribe{PacketID: 1, Subscriptions: []packets.Subscription{sub("firehose", 0)}}
	b = s.Append(b, packets.V311)
	if _, err := conn.Write(b); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(mqtttest.Timeout))
	for _, want := range []packets.Type{packets.CONNACK, packets.SUBACK} {
		first, _, err := packets.ReadPacket(conn, nil, 0)
		if err != nil || packets.Type(first>>4) != want {
			t.Fatalf("slow subscriber: got type %d, err %v; want %v", first>>4, err, want)
		}
	}

	p := mqtttest.MustConnect(t, addr, mqtttest.V311("fast", true))
	msg := pub("firehose", string(bytes.Repeat([]byte{'x'}, size)), 0).Append(nil, packets.V311)
	var burst []byte
	for range 100 {
		burst = append(burst, msg...)
	}
	dropped := srv.Stats().MessagesDropped
	begin := time.Now()
	for range n / 100 {
		p.Write(burst)
	}
	p.Ping() // every PUBLISH before it has been routed
	took := time.Since(begin)

	dropped = srv.Stats().MessagesDropped - dropped
	// What was not dropped sits in the pending buffer, the one write in
	// progress, or the sockets' buffers (16 KiB each, doubled by Linux):
	// bounded, whatever n is.
	if kept := n - dropped; kept*size > 2*pending+2*pending+128<<10 {
		t.Errorf("%d of %d messages (%d KiB) kept for a subscriber that does not read, want at most ~%d KiB", kept, n, kept*size>>10, (4*pending+128<<10)>>10)
	}
	t.Logf("published %d × %d B in %v; %d dropped for the slow subscriber", n, size, took, dropped)

	// The broker still serves everyone else.
	other := mqtttest.MustConnect(t, addr, mqtttest.V5("other"))
	other.Sub("ok", 0)
	p.Pub("ok", "fine", 0)
	checkPublish(t, other.ExpectPublish(), "ok", "fine")
}

type smallBufListener struct{ net.Listener }

func (l smallBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(16 << 10)
	}
	return c, err
}

// Shutdown tells 5.0 clients 0x8B Server shutting down [MQTT-3.14.2],
// closes 3.1.1 ones, publishes no wills, and Serve returns ErrServerClosed.
func TestShutdown(t *testing.T) {
	t.Parallel()
	srv, err := broker.New(broker.Options{AllowAnonymous: true, SysInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(context.Background(), ln) }()
	addr := ln.Addr().String()

	v5 := mqtttest.MustConnect(t, addr, withWill(mqtttest.V5("v5"), "will/v5", 0))
	v5.Sub("will/#", 0)
	v3 := mqtttest.MustConnect(t, addr, withWill(mqtttest.V311("v3", true), "will/v3", 0))

	ctx, cancel := context.WithTimeout(context.Background(), mqtttest.Timeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	v5.ExpectDisconnect(packets.ServerShuttingDown) // and no will before it
	v3.ExpectClosed()
	select {
	case err := <-served:
		if !errors.Is(err, broker.ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	case <-time.After(mqtttest.Timeout):
		t.Fatal("Serve did not return")
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Error("listener still accepts after Shutdown")
	}
}

package broker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/fleetmq/fleetmq/broker"
	"github.com/fleetmq/fleetmq/broker/internal/mqtttest"
	"github.com/fleetmq/fleetmq/broker/packets"
)

// [MQTT-3.1.2-4] (3.1.1 Clean Session 0) / [MQTT-3.1.2-5] (5.0): QoS 1 and
// 2 messages published while the client is offline are kept and sent when
// the session resumes, in order; QoS 0 ones may be dropped.
func TestSessionResumeQueued(t *testing.T) {
	t.Parallel()
	_, addr := startDefault(t)
	for _, cp := range []*packets.Connect{mqtttest.V311("q311", false), withExpiry("q5", false, 60)} {
		topic := "queued/" + cp.ClientID
		s := mqtttest.MustConnect(t, addr, cp)
		s.Sub(topic, 2)
		s.Disconnect()

		p := mqtttest.MustConnect(t, addr, mqtttest.V5("p-"+cp.ClientID))
		p.Pub(topic, "q1", 1)
		p.Pub(topic, "q2", 2)
		p.Pub(topic, "q0", 0)
		p.Pub(topic, "q1b", 1)

		s2, ack := mqtttest.Connect(t, addr, cp)
		if !ack.SessionPresent {
			t.Fatalf("%s: session not present", cp.ClientID)
		}
		for _, want := range []string{"q1", "q2", "q1b"} {
			checkPublish(t, s2.Receive(), topic, want)
		}
		s2.ExpectNone(quiet)
		// The subscription survived too.
		p.Pub(topic, "live", 1)
		checkPublish(t, s2.Receive(), topic, "live")
	}
}

// The offline queue is bounded: with MaxQueuedMessages 3, the oldest three
// are kept and the rest dropped and counted.
func TestSessionQueueBounded(t *testing.T) {
	t.Parallel()
	srv, addr := start(t, broker.Options{Limits: broker.Limits{MaxQueuedMessages: 3}})
	s := mqtttest.MustConnect(t, addr, mqtttest.V311("bounded", false))
	s.Sub("b", 1)
	s.Disconnect()

	before := srv.Stats().MessagesDropped
	p := mqtttest.MustConnect(t, addr, mqtttest.V311("p", true))
	for i := range 5 {
		p.Pub("b", fmt.Sprint(i), 1)
	}
	if got := srv.Stats().MessagesDropped - before; got != 2 {
		t.Errorf("MessagesDropped grew by %d, want 2", got)
	}
	s2 := mqtttest.MustConnect(t, addr, mqtttest.V311("bounded", false))
	for i := range 3 {
		checkPublish(t, s2.Receive(), "b", fmt.Sprint(i))
	}
	s2.ExpectNone(quiet)
}

// [MQTT-3.1.2-23] (5.0): the session is kept for Session Expiry Interval
// seconds after the connection ends, then discarded.
func TestSessionExpiry(t *testing.T) {
	t.Parallel()
	srv, addr := startDefault(t)
	s := mqtttest.MustConnect(t, addr, withExpiry("exp", true, 1))
	s.Sub("e", 1)
	s.Disconnect()
	if n := srv.Stats().Sessions; n != 1 {
		t.Fatalf("%d sessions right after disconnect, want 1", n)
	}
	begin := time.Now()
	mqtttest.WaitFor(t, "the session to expire", func() bool { return srv.Stats().Sessions == 0 })
	if took := time.Since(begin); took < 700*time.Millisecond {
		t.Errorf("session ended after %v, want about 1s", took)
	}
	if n := srv.Stats().Subscriptions; n != 0 {
		t.Errorf("%d subscriptions left after expiry", n)
	}
	_, ack := mqtttest.Connect(t, addr, withExpiry("exp", false, 1))
	if ack.SessionPresent {
		t.Error("session present after it expired")
	}
}

// A session reconnected within its expiry interval survives it.
func TestSessionReconnectBeforeExpiry(t *testing.T) {
	t.Parallel()
	_, addr := startDefault(t)
	s := mqtttest.MustConnect(t, addr, withExpiry("keep", true, 2))
	s.Sub("k", 1)
	s.Close()
	time.Sleep(500 * time.Millisecond)
	s2, ack := mqtttest.Connect(t, addr, withExpiry("keep", false, 2))
	if !ack.SessionPresent {
		t.Fatal("session not present")
	}
	s2.Close()
	time.Sleep(2500 * time.Millisecond) // the first timer would have fired by now
	_, ack = mqtttest.Connect(t, addr, withExpiry("keep", false, 2))
	if ack.SessionPresent {
		t.Fatal("session present 2.5s after a disconnect with expiry 2")
	}
}

// [MQTT-3.1.2-6] (3.1.1) / [MQTT-3.1.2-4] (5.0): clean start discards the
// old session: no subscriptions, no queued messages.
func TestCleanStartDiscards(t *testing.T) {
	t.Parallel()
	srv, addr := startDefault(t)
	s := mqtttest.MustConnect(t, addr, withExpiry("cs", true, 60))
	s.Sub("cs", 1)
	s.Disconnect()
	p := mqtttest.MustConnect(t, addr, mqtttest.V5("p"))
	p.Pub("cs", "queued", 1)

	s2, ack := mqtttest.Connect(t, addr, withExpiry("cs", true, 60))
	if ack.SessionPresent {
		t.Fatal("session present after clean start")
	}
	s2.ExpectNone(quiet)
	if got := p.Publish(pub("cs", "after", 1)); got != packets.NoMatchingSubscribers {
		t.Errorf("PUBACK code 0x%02X, want 0x10 no matching subscribers", byte(got))
	}
	s2.ExpectNone(quiet)
	if n := srv.Stats().Subscriptions; n != 0 {
		t.Errorf("%d subscriptions, want 0", n)
	}
}

// [MQTT-3.14.2-2] (5.0): DISCONNECT may change the session expiry, except
// from 0 to non-zero (a Protocol Error).
func TestDisconnectSessionExpiry(t *testing.T) {
	t.Parallel()
	_, addr := startDefault(t)
	s := mqtttest.MustConnect(t, addr, withExpiry("dse", true, 60))
	s.Sub("d", 1)
	d := packets.Disconnect{Props: packets.Properties{SessionExpiry: 0, HasSessionExpiry: true}}
	s.Write(d.Append(nil, packets.V5))
	s.ExpectClosed()
	_, ack := mqtttest.Connect(t, addr, withExpiry("dse", false, 0))
	if ack.SessionPresent {
		t.Error("session survived DISCONNECT with session expiry 0")
	}

	z := mqtttest.MustConnect(t, addr, withExpiry("zero", true, 0))
	d = packets.Disconnect{Props: packets.Properties{SessionExpiry: 30, HasSessionExpiry: true}}
	z.Write(d.Append(nil, packets.V5))
	z.ExpectDisconnect(packets.ProtocolError)
}

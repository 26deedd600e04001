package broker_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/fleetmq/fleetmq/broker/internal/mqtttest"
	"github.com/fleetmq/fleetmq/broker/packets"
)

// Every combination of published and subscribed QoS, both protocol
// versions: the message arrives once at min(published, granted)
// [MQTT-3.8.4-6] (3.1.1) / [MQTT-3.8.4-8] (5.0), and each side's handshake
// completes [MQTT-4.3.1..3].
func TestQoSMatrix(t *testing.T) {
	t.Parallel()
	_, addr := startDefault(t)
	for _, v := range []packets.Version{packets.V311, packets.V5} {
		for pubQoS := byte(0); pubQoS <= 2; pubQoS++ {
			for subQoS := byte(0); subQoS <= 2; subQoS++ {
				name := fmt.Sprintf("v%d/pub%d/sub%d", v, pubQoS, subQoS)
				t.Run(name, func(t *testing.T) {
					topic := "qos/" + name
					s := mqtttest.MustConnect(t, addr, &packets.Connect{Version: v, ClientID: "s-" + name, CleanStart: true})
					s.Sub(topic, subQoS)
					p := mqtttest.MustConnect(t, addr, &packets.Connect{Version: v, ClientID: "p-" + name, CleanStart: true})
					p.Pub(topic, "m", pubQoS)
					got := s.Receive()
					checkPublish(t, got, topic, "m")
					if want := min(pubQoS, subQoS); got.QoS != want {
						t.Errorf("delivered at QoS %d, want %d", got.QoS, want)
					}
					if got.Dup {
						t.Errorf("DUP set on a first delivery [MQTT-3.3.1-1]")
					}
					s.ExpectNone(quiet)
				})
			}
		}
	}
}

// [MQTT-4.3.3-9..10] (3.1.1 4.3.3): the receiver of a QoS 2 PUBLISH hands it
// on once, even when the sender reconnects and sends it again with DUP
// before PUBREL.
func TestQoS2InboundExactlyOnceAcrossReconnect(t *testing.T) {
	t.Parallel()
	_, addr := startDefault(t)
	s := mqtttest.MustConnect(t, addr, mqtttest.V311("sub", true))
	s.Sub("eo/in", 2)

	p := mqtttest.MustConnect(t, addr, mqtttest.V311("pub", false))
	msg := pub("eo/in", "once", 2)
	msg.PacketID = 7
	p.WritePublish(msg)
	p.ExpectAck(packets.PUBREC, 7)
	p.Close() // before PUBREL

	checkPublish(t, s.Receive(), "eo/in", "once")

	p2, ack := mqtttest.Connect(t, addr, mqtttest.V311("pub", false))
	if !ack.SessionPresent {
		t.Fatal("publisher's session not present")
	}
	msg.Dup = true
	p2.WritePublish(msg)
	p2.ExpectAck(packets.PUBREC, 7)
	p2.WriteAck(packets.PUBREL, 7)
	p2.ExpectAck(packets.PUBCOMP, 7)
	// The id is free again: a new message with it is a new message.
	msg2 := pub("eo/in", "second", 2)
	msg2.PacketID = 7
	p2.Publish(msg2)

	checkPublish(t, s.Receive(), "eo/in", "second")
	s.ExpectNone(quiet)
}

// [MQTT-4.4.0-1]: on resuming a session the broker re-sends unacknowledged
// PUBLISHes with DUP [MQTT-3.3.1-1] and the PUBRELs of messages past PUBREC
// (and not the PUBLISH again), so the application sees each message once.
func TestQoS2OutboundResume(t *testing.T) {
	t.Parallel()
	_, addr := startDefault(t)
	p := mqtttest.MustConnect(t, addr, mqtttest.V311("pub", true))

	t.Run("before PUBCOMP", func(t *testing.T) {
		s := mqtttest.MustConnect(t, addr, mqtttest.V311("s1", false))
		s.Sub("eo/out1", 2)
		p.Pub("eo/out1", "m", 2)
		got := s.ExpectPublish()
		s.WriteAck(packets.PUBREC, got.PacketID)
		s.ExpectAck(packets.PUBREL, got.PacketID)
		s.Close() // before PUBCOMP

		s2, ack := mqtttest.Connect(t, addr, mqtttest.V311("s1", false))
		if !ack.SessionPresent {
			t.Fatal("session not present")
		}
		s2.ExpectAck(packets.PUBREL, got.PacketID)
		s2.WriteAck(packets.PUBCOMP, got.PacketID)
		s2.ExpectNone(quiet)
		s2.Disconnect()
	})
	t.Run("before PUBREC", func(t *testing.T) {
		s := mqtttest.MustConnect(t, addr, mqtttest.V311("s2", false))
		s.Sub("eo/out2", 2)
		p.Pub("eo/out2", "m", 2)
		got := s.ExpectPublish()
		s.Close() // before PUBREC

		s2, ack := mqtttest.Connect(t, addr, mqtttest.V311("s2", false))
		if !ack.SessionPresent {
			t.Fatal("session not present")
		}
		again := s2.ExpectPublish()
		if !again.Dup || again.PacketID != got.PacketID || again.QoS != 2 {
			t.Fatalf("redelivery dup=%v id=%d qos=%d, want dup with id %d at QoS 2", again.Dup, again.PacketID, again.QoS, got.PacketID)
		}
		s2.WriteAck(packets.PUBREC, again.PacketID)
		s2.ExpectAck(packets.PUBREL, again.PacketID)
		s2.WriteAck(packets.PUBCOMP, again.PacketID)
		s2.ExpectNone(quiet)
	})
	t.Run("QoS 1 before PUBACK", func(t *testing.T) {
		s := mqtttest.MustConnect(t, addr, withExpiry("s3", true, 60))
		s.Sub("eo/out3", 1)
		p.Pub("eo/out3", "m", 1)
		got := s.ExpectPublish()
		s.Close()
		s2 := mqtttest.MustConnect(t, addr, withExpiry("s3", false, 60))
		again := s2.ExpectPublish()
		if !again.Dup || again.PacketID != got.PacketID {
			t.Fatalf("redelivery dup=%v id=%d, want dup with id %d", again.Dup, again.PacketID, got.PacketID)
		}
		s2.WriteAck(packets.PUBACK, again.PacketID)
		s2.ExpectNone(quiet)
	})
}

// [MQTT-3.3.4-2..5] (5.0): a client whose subscriptions overlap gets the
// message once, at the highest granted QoS, with the identifiers of every
// matching subscription.
func TestOverlappingSubscriptions(t *testing.T) {
	t.Parallel()
	_, addr := startDefault(t)
	s := mqtttest.MustConnect(t, addr, mqtttest.V5("s"))
	s.Subscribe(packets.Properties{SubscriptionIDs: []uint32{1}}, sub("a/+", 0))
	s.Subscribe(packets.Properties{SubscriptionIDs: []uint32{2}}, sub("a/#", 2))
	s.Subscribe(packets.Properties{}, sub("a/b", 1))
	s.Subscribe(packets.Properties{SubscriptionIDs: []uint32{300}}, sub("+/b", 1))
	s.Subscribe(packets.Properties{SubscriptionIDs: []uint32{4}}, sub("x/#", 2)) // no match

	p := mqtttest.MustConnect(t, addr, mqtttest.V5("p"))
	p.Pub("a/b", "m", 2)
	got := s.Receive()
	if got.QoS != 2 {
		t.Errorf("QoS %d, want 2", got.QoS)
	}
	ids := slices.Sorted(slices.Values(got.Props.SubscriptionIDs))
	if !slices.Equal(ids, []uint32{1, 2, 300}) {
		t.Errorf("subscription ids %v, want [1 2 300]", ids)
	}
	s.ExpectNone(quiet)

	// 3.1.1 has no identifiers but also gets one copy [MQTT-3.3.5-1].
	s3 := mqtttest.MustConnect(t, addr, mqtttest.V311("s3", true))
	s3.Sub("a/+", 0)
	s3.Sub("a/#", 1)
	p.Pub("a/c", "m", 1)
	if got := s3.Receive(); got.QoS != 1 {
		t.Errorf("3.1.1: QoS %d, want 1", got.QoS)
	}
	s3.ExpectNone(quiet)
}

// Messages from one publisher to one subscriber keep their order
// [MQTT-4.6.0-5]; QoS 1 acknowledgements come in order [MQTT-4.6.0-2].
func TestOrdering(t *testing.T) {
	t.Parallel()
	_, addr := startDefault(t)
	s := mqtttest.MustConnect(t, addr, mqtttest.V5("s"))
	s.Sub("ord", 1)
	p := mqtttest.MustConnect(t, addr, mqtttest.V5("p"))
	const n = 50
	for i := range n {
		m := pub("ord", fmt.Sprint(i), 1)
		m.PacketID = uint16(i + 1)
		p.WritePublish(m)
	}
	for i := range n {
		p.ExpectAck(packets.PUBACK, uint16(i+1))
	}
	for i := range n {
		got := s.Receive()
		if string(got.Payload) != fmt.Sprint(i) {
			t.Fatalf("message %d has payload %q", i, got.Payload)
		}
	}
}

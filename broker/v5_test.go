package broker_test

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleetmq/fleetmq/broker"
	"github.com/fleetmq/fleetmq/broker/internal/mqtttest"
	"github.com/fleetmq/fleetmq/broker/packets"
)

// [MQTT-3.3.2-5]: a message whose expiry passes while queued is not
// delivered; [MQTT-3.3.2-6]: the expiry sent is the original minus the
// time it waited.
func TestMessageExpiry(t *testing.T) {
	t.Parallel()
	_, addr := startDefault(t)
	s := mqtttest.MustConnect(t, addr, withExpiry("s", true, 60))
	s.Sub("exp/#", 1)
	s.Disconnect()

	p := mqtttest.MustConnect(t, addr, mqtttest.V5("p"))
	short := pub("exp/short", "dies", 1)
	short.Props.MessageExpiry, short.Props.HasMessageExpiry = 1, true
	p.Publish(short)
	long := pub("exp/long", "lives", 1)
	long.Props.MessageExpiry, long.Props.HasMessageExpiry = 30, true
	p.Publish(long)
	p.Pub("exp/never", "forever", 1)
	time.Sleep(1200 * time.Millisecond)

	s2 := mqtttest.MustConnect(t, addr, withExpiry("s", false, 60))
	got := s2.Receive()
	checkPublish(t, got, "exp/long", "lives")
	if !got.Props.HasMessageExpiry || got.Props.MessageExpiry > 29 || got.Props.MessageExpiry < 25 {
		t.Errorf("message expiry %v/%d, want 29 or a little less", got.Props.HasMessageExpiry, got.Props.MessageExpiry)
	}
	got = s2.Receive()
	checkPublish(t, got, "exp/never", "forever")
	if got.Props.HasMessageExpiry {
		t.Errorf("message expiry %d on a message published without one", got.Props.MessageExpiry)
	}
	s2.ExpectNone(quiet)

	// A live subscriber gets the interval unchanged (it did not wait).
	p.Publish(long)
	if got := s2.Receive(); got.Props.MessageExpiry != 30 {
		t.Errorf("live delivery expiry %d, want 30", got.Props.MessageExpiry)
	}

	// An expired retained message is not replayed.
	r := retained("exp/retained", "old", 1)
	r.Props.MessageExpiry, r.Props.HasMessageExpiry = 1, true
	p.Publish(r)
	s2.Receive()
	time.Sleep(1100 * time.Millisecond)
	late := mqtttest.MustConnect(t, addr, mqtttest.V5("late"))
	late.Sub("exp/retained", 1)
	late.ExpectNone(quiet)
}

// [MQTT-3.3.2-7..12] inbound topic aliases: an alias set with a topic may
// be used with an empty topic; 0 or above the broker's Topic Alias Maximum
// is a protocol error answered with DISCONNECT 0x94.
func TestTopicAliasInbound(t *testing.T) {
	t.Parallel()
	srv, addr := start(t, broker.Options{Limits: broker.Limits{TopicAliasMaximum: 2}})
	s := mqtttest.MustConnect(t, addr, mqtttest.V5("s"))
	s.Sub("alias/#", 0)

	p, ack := mqtttest.Connect(t, addr, mqtttest.V5("p"))
	if !ack.Props.HasTopicAliasMaximum || ack.Props.TopicAliasMaximum != 2 {
		t.Fatalf("CONNACK Topic Alias Maximum %v/%d, want 2", ack.Props.HasTopicAliasMaximum, ack.Props.TopicAliasMaximum)
	}
	withAlias := func(topic string, alias uint16, payload string) *packets.Publish {
		m := pub(topic, payload, 0)
		m.Props.TopicAlias, m.Props.HasTopicAlias = alias, true
		return m
	}
	p.Publish(withAlias("alias/one", 1, "set"))
	p.Publish(withAlias("", 1, "used"))
	p.Publish(withAlias("alias/two", 1, "reset")) // an alias may be redefined
	p.Publish(withAlias("", 1, "used again"))
	for _, want := range [][2]string{{"alias/one", "set"}, {"alias/one", "used"}, {"alias/two", "reset"}, {"alias/two", "used again"}} {
		got := s.ExpectPublish()
		checkPublish(t, got, want[0], want[1])
		if got.Props.HasTopicAlias {
			t.Errorf("subscriber got topic alias %d it never asked for", got.Props.TopicAlias)
		}
	}

	for _, tt := range []struct {
		name string
		raw  []byte
		code packets.ReasonCode
	}{
		{"alias 0", []byte{0x30, 0x0A, 0x00, 0x03, 'a', '/', 'b', 0x03, 0x23, 0x00, 0x00, 'x'}, packets.TopicAliasInvalid},
		{"alias above maximum", withAlias("alias/x", 3, "x").Append(nil, packets.V5), packets.TopicAliasInvalid},
		// An alias never set, used with an empty topic.
		{"unknown alias", withAlias("", 2, "x").Append(nil, packets.V5), packets.ProtocolError},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := srv.Stats().ProtocolErrors
			c := mqtttest.MustConnect(t, addr, mqtttest.V5("bad"))
			c.Write(tt.raw)
			c.ExpectDisconnect(tt.code)
			if srv.Stats().ProtocolErrors <= before {
				t.Error("ProtocolErrors not counted")
			}
		})
	}
}

// [MQTT-3.3.2-17..18] outbound topic aliases: the broker may use aliases
// up to the client's Topic Alias Maximum, and none when it announced none.
func TestTopicAliasOutbound(t *testing.T) {
	t.Parallel()
	_, addr := startDefault(t)
	cp := mqtttest.V5("s")
	cp.Props.TopicAliasMaximum, cp.Props.HasTopicAliasMaximum = 1, true
	s := mqtttest.MustConnect(t, addr, cp)
	s.Sub("out/#", 0)
	p := mqtttest.MustConnect(t, addr, mqtttest.V5("p"))

	p.Pub("out/a", "1", 0)
	first := s.ExpectPublish()
	if !first.Props.HasTopicAlias || first.Props.TopicAlias != 1 || string(first.Topic) != "out/a" {
		t.Fatalf("first delivery topic %q alias %v/%d, want out/a with alias 1", first.Topic, first.Props.HasTopicAlias, first.Props.TopicAlias)
	}
	p.Pub("out/a", "2", 0)
	second := s.ExpectPublish()
	if len(second.Topic) != 0 || second.Props.TopicAlias != 1 {
		t.Fatalf("second delivery topic %q alias %d, want empty topic and alias 1", second.Topic, second.Props.TopicAlias)
	}
	// The only alias is taken: another topic goes in full, without one
	// above the maximum [MQTT-3.3.2-18].
	p.Pub("out/b", "3", 0)
	third := s.ExpectPublish()
	if string(third.Topic) != "out/b" || (third.Props.HasTopicAlias && third.Props.TopicAlias > 1) {
		t.Fatalf("third delivery topic %q alias %d", third.Topic, third.Props.TopicAlias)
	}

	plain := mqtttest.MustConnect(t, addr, mqtttest.V5("plain"))
	plain.Sub("out/#", 0)
	p.Pub("out/a", "4", 0)
	s.ExpectPublish()
	if got := plain.ExpectPublish(); got.Props.HasTopicAlias {
		t.Errorf("alias %d sent to a client with Topic Alias Maximum 0", got.Props.TopicAlias)
	}
}

// [MQTT-3.3.2-15..20], [MQTT-3.3.2-4]: payload format, content type,
// response topic, correlation data and user properties reach the
// subscriber unaltered and in order.
func TestPropertiesForwarded(t *testing.T) {
	t.Parallel()
	_, addr := startDefault(t)
	s := mqtttest.MustConnect(t, addr, mqtttest.V5("s"))
	s.Sub("props", 2)
	p := mqtttest.MustConnect(t, addr, mqtttest.V5("p"))
	m := pub("props", "{}", 1)
	m.Props = packets.Properties{
		PayloadFormat: 1, HasPayloadFormat: true,
		ContentType:     "application/json",
		ResponseTopic:   "reply/here",
		CorrelationData: []byte{0, 1, 2, 0xFF},
		User:            []packets.UserProperty{{Key: "b", Value: "2"}, {Key: "a", Value: "1"}, {Key: "b", Value: "3"}},
	}
	p.Publish(m)
	got := s.Receive()
	gp := got.Props
	if gp.PayloadFormat != 1 || !gp.HasPayloadFormat || gp.ContentType != m.Props.ContentType ||
		gp.ResponseTopic != m.Props.ResponseTopic || !bytes.Equal(gp.CorrelationData, m.Props.CorrelationData) ||
		!slices.Equal(gp.User, m.Props.User) {
		t.Errorf("got properties %+v, want %+v", gp, m.Props)
	}
	// 3.1.1 subscribers get the message without properties.
	s3 := mqtttest.MustConnect(t, addr, mqtttest.V311("s3", true))
	s3.Sub("props", 0)
	p.Publish(m)
	s.Receive()
	checkPublish(t, s3.ExpectPublish(), "props", "{}")
}

// [MQTT-3.1.2-24..25]: the broker sends no packet larger than the client's
// Maximum Packet Size: such a message is dropped for that client.
// 3.2.2.3.6: a packet larger than the broker's Maximum Packet Size is
// answered with DISCONNECT 0x95 [MQTT-4.13.2-1].
func TestMaximumPacketSize(t *testing.T) {
	t.Parallel()
	srv, addr := start(t, broker.Options{Limits: broker.Limits{MaxPacketSize: 256}})
	cp := mqtttest.V5("small")
	cp.Props.MaximumPacketSize, cp.Props.HasMaximumPacketSize = 64, true
	small, ack := mqtttest.Connect(t, addr, cp)
	if ack.Props.MaximumPacketSize != 256 {
		t.Errorf("CONNACK Maximum Packet Size %d, want 256", ack.Props.MaximumPacketSize)
	}
	small.Sub("mps", 1)
	big := mqtttest.MustConnect(t, addr, mqtttest.V5("big"))
	big.Sub("mps", 1)

	p := mqtttest.MustConnect(t, addr, mqtttest.V5("p"))
	dropped := srv.Stats().MessagesDropped
	p.Pub("mps", strings.Repeat("x", 100), 1)
	p.Pub("mps", "fits", 1)
	if got := big.Receive(); len(got.Payload) != 100 {
		t.Errorf("unlimited client got %d bytes, want 100", len(got.Payload))
	}
	big.Receive()
	checkPublish(t, small.Receive(), "mps", "fits")
	small.ExpectNone(quiet)
	if srv.Stats().MessagesDropped <= dropped {
		t.Error("oversized delivery not counted as dropped")
	}

	// Inbound: 300 bytes against the broker's 256.
	p.Write(pub("mps", strings.Repeat("y", 300), 0).Append(nil, packets.V5))
	p.ExpectDisconnect(packets.PacketTooLarge)
	bystanderWorks(t, big, small, "mps")
}

// [MQTT-3.1.2-29]: with Request Problem Information 0 the broker sends no
// Reason String except in PUBLISH, CONNACK and DISCONNECT.
func TestRequestProblemInformation(t *testing.T) {
	t.Parallel()
	_, addr := startDefault(t)
	for _, tt := range []struct {
		name string
		set  bool
		val  byte
		want bool
	}{{"default", false, 0, true}, {"1", true, 1, true}, {"0", true, 0, false}} {
		cp := mqtttest.V5("rpi" + tt.name)
		cp.Props.RequestProblemInfo, cp.Props.HasRequestProblemInfo = tt.val, tt.set
		c := mqtttest.MustConnect(t, addr, cp)
		m := pub("$bad", "x", 1) // refused: clients may not publish to $-topics
		m.PacketID = 1
		c.WritePublish(m)
		a := c.ExpectAck(packets.PUBACK, 1)
		if a.ReasonCode != packets.TopicNameInvalid {
			t.Errorf("%s: PUBACK code 0x%02X, want 0x90", tt.name, byte(a.ReasonCode))
		}
		if got := a.Props.ReasonString != ""; got != tt.want {
			t.Errorf("%s: reason string %q present=%v, want %v", tt.name, a.Props.ReasonString, got, tt.want)
		}
	}
}

// [MQTT-3.3.4-9] / 4.9: the broker never has more unacknowledged QoS 1/2
// PUBLISHes outstanding to a client than its Receive Maximum.
func TestReceiveMaximumOutbound(t *testing.T) {
	t.Parallel()
	_, addr := startDefault(t)
	cp := mqtttest.V5("s")
	cp.Props.ReceiveMaximum, cp.Props.HasReceiveMaximum = 2, true
	s := mqtttest.MustConnect(t, addr, cp)
	s.Sub("rm", 2)
	p := mqtttest.MustConnect(t, addr, mqtttest.V5("p"))
	const n = 7
	for i := range n {
		p.Pub("rm", fmt.Sprint(i), byte(1+i%2))
	}
	var outstanding []*packets.Publish
	for next := 0; next < n; {
		for {
			pk, ok := s.Next(quiet)
			if !ok {
				break
			}
			if pk.Publish == nil {
				t.Fatalf("got %v", pk)
			}
			if string(pk.Publish.Payload) != fmt.Sprint(next) {
				t.Fatalf("got message %q, want %d", pk.Publish.Payload, next)
			}
			next++
			outstanding = append(outstanding, pk.Publish)
			if len(outstanding) > 2 {
				t.Fatalf("%d unacknowledged PUBLISHes outstanding, Receive Maximum is 2", len(outstanding))
			}
		}
		if len(outstanding) == 0 {
			t.Fatalf("stalled after %d messages", next)
		}
		// Acknowledge the oldest; for QoS 2 the slot frees at PUBCOMP.
		o := outstanding[0]
		outstanding = outstanding[1:]
		if o.QoS == 1 {
			s.WriteAck(packets.PUBACK, o.PacketID)
		} else {
			s.WriteAck(packets.PUBREC, o.PacketID)
			s.ExpectAck(packets.PUBREL, o.PacketID)
			if pk, ok := s.Next(quiet); ok {
				t.Fatalf("got %v after PUBREC, before PUBCOMP: the slot is still taken", pk)
			}
			s.WriteAck(packets.PUBCOMP, o.PacketID)
		}
	}
}

// [MQTT-3.3.4-9] inbound: more unacknowledged QoS 2 PUBLISHes than the
// broker's Receive Maximum is DISCONNECT 0x93.
func TestReceiveMaximumInbound(t *testing.T) {
	t.Parallel()
	srv, addr := start(t, broker.Options{Limits: broker.Limits{MaxInflight: 2}})
	c, ack := mqtttest.Connect(t, addr, mqtttest.V5("c"))
	if ack.Props.ReceiveMaximum != 2 {
		t.Fatalf("CONNACK Receive Maximum %d, want 2", ack.Props.ReceiveMaximum)
	}
	before := srv.Stats().ProtocolErrors
	for id := uint16(1); id <= 2; id++ {
		m := pub("rmi", "x", 2)
		m.PacketID = id
		c.WritePublish(m)
		c.ExpectAck(packets.PUBREC, id)
	}
	m := pub("rmi", "x", 2)
	m.PacketID = 3
	c.WritePublish(m)
	c.ExpectDisconnect(packets.ReceiveMaximumExceeded)
	if srv.Stats().ProtocolErrors != before+1 {
		t.Error("ProtocolErrors not counted")
	}
	// Completing the handshake frees a slot: a well-behaved client never
	// hits the limit.
	ok := mqtttest.MustConnect(t, addr, mqtttest.V5("ok"))
	for i := range 5 {
		ok.Pub("rmi", fmt.Sprint(i), 2)
	}
}

// [MQTT-3.1.2-28]: a client that sets Request Response Information gets
// Response Information when the broker is configured with a prefix, and
// none otherwise (or when it did not ask).
func TestResponseInformation(t *testing.T) {
	t.Parallel()
	_, addr := start(t, broker.Options{ResponseTopicPrefix: "replies/"})
	ask := mqtttest.V5("asker")
	ask.Props.RequestResponseInfo, ask.Props.HasRequestResponseInfo = 1, true
	_, ack := mqtttest.Connect(t, addr, ask)
	if ack == nil || ack.Props.ResponseInfo != "replies/asker/" {
		t.Fatalf("CONNACK %+v: want Response Information %q", ack, "replies/asker/")
	}
	_, ack = mqtttest.Connect(t, addr, mqtttest.V5("quiet"))
	if ack == nil || ack.Props.ResponseInfo != "" {
		t.Fatalf("CONNACK %+v: want no Response Information when not requested", ack)
	}
	_, plain := startDefault(t)
	_, ack = mqtttest.Connect(t, plain, ask)
	if ack == nil || ack.Props.ResponseInfo != "" {
		t.Fatalf("CONNACK %+v: want no Response Information without a configured prefix", ack)
	}
}

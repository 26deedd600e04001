package broker_test

import (
	"net"
	"testing"

	"github.com/fleetmq/fleetmq/broker"
	"github.com/fleetmq/fleetmq/broker/internal/mqtttest"
	"github.com/fleetmq/fleetmq/broker/packets"
)

// A client that sends bad input is disconnected — 5.0 first gets a
// DISCONNECT (or, while connecting, a CONNACK) with the reason code the
// spec names [MQTT-4.13.1-1], 3.1.1 just sees the connection close
// [MQTT-4.8.0-1] — the error is counted, and nobody else notices.
func TestBadInput(t *testing.T) {
	t.Parallel()
	srv, addr := start(t, broker.Options{Limits: broker.Limits{MaxPacketSize: 1024}})
	subscriber := mqtttest.MustConnect(t, addr, mqtttest.V5("bystander-sub"))
	subscriber.Sub("bystander", 1)
	publisher := mqtttest.MustConnect(t, addr, mqtttest.V311("bystander-pub", true))

	publishWithProps := func(props ...byte) []byte {
		b := []byte{0x30, byte(5 + len(props)), 0x00, 0x01, 't', byte(len(props))}
		return append(append(b, props...), 'x')
	}
	connect := func(v packets.Version) *packets.Connect {
		return &packets.Connect{Version: v, ClientID: "bad", CleanStart: true, KeepAlive: 60}
	}
	tests := []struct {
		name string
		// raw is sent after a successful CONNECT, or instead of CONNECT
		// when preConnect is set.
		raw        func(v packets.Version) []byte
		preConnect bool
		v5Only     bool
		code       packets.ReasonCode // 5.0 reason code; 0: just closed
		notCounted bool
	}{
		// [MQTT-1.5.5] a Variable Byte Integer of at most four bytes.
		{name: "malformed remaining length", raw: func(packets.Version) []byte { return []byte{0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01} }, code: packets.MalformedPacket},
		// 3.2.2.3.6: bigger than the broker's Maximum Packet Size; refused
		// as soon as the fixed header says so.
		{name: "oversized packet", raw: func(packets.Version) []byte { return []byte{0x30, 0xD0, 0x0F} }, code: packets.PacketTooLarge},
		// [MQTT-3.1.0-1]: the first packet must be CONNECT; there is no
		// session to send DISCONNECT to.
		{name: "first packet not CONNECT", preConnect: true, raw: func(packets.Version) []byte { return packets.AppendEmpty(nil, packets.PINGREQ) }},
		// [MQTT-3.1.0-2]: a second CONNECT is a protocol error.
		{name: "second CONNECT", raw: func(v packets.Version) []byte { return connect(v).Append(nil) }, code: packets.ProtocolError},
		// [MQTT-1.5.4-1] (5.0) / [MQTT-1.5.3-1] (3.1.1): ill-formed UTF-8.
		{name: "invalid UTF-8 topic", raw: func(packets.Version) []byte { return []byte{0x30, 0x05, 0x00, 0x02, 0xC3, 0x28, 'x'} }, code: packets.MalformedPacket},
		// [MQTT-1.5.4-2] (5.0) / [MQTT-1.5.3-2] (3.1.1): U+0000 in a string.
		{name: "NUL in topic", raw: func(packets.Version) []byte { return []byte{0x30, 0x05, 0x00, 0x02, 'a', 0x00, 'x'} }, code: packets.MalformedPacket},
		// [MQTT-3.3.2-2]: no wildcards in a Topic Name.
		{name: "wildcard in PUBLISH topic", raw: func(v packets.Version) []byte { return pub("a/+", "x", 0).Append(nil, v) }, code: packets.TopicNameInvalid},
		// [MQTT-4.7.1-2]: '#' only as the last level of a filter.
		{name: "invalid filter", raw: func(v packets.Version) []byte {
			s := packets.Subscribe{PacketID: 1, Subscriptions: []packets.Subscription{sub("a/#/b", 0)}}
			return s.Append(nil, v)
		}, code: packets.TopicFilterInvalid},
		// [MQTT-3.8.1-1] SUBSCRIBE fixed header flags are 0010;
		// [MQTT-2.1.3-1] (5.0): anything else is Malformed.
		{name: "reserved flag bits", raw: func(v packets.Version) []byte {
			s := packets.Subscribe{PacketID: 1, Subscriptions: []packets.Subscription{sub("a", 0)}}
			b := s.Append(nil, v)
			b[0] = 0x80
			return b
		}, code: packets.MalformedPacket},
		// [MQTT-3.3.1-4]: QoS 3.
		{name: "PUBLISH QoS 3", raw: func(v packets.Version) []byte {
			b := pub("a", "x", 1).Append(nil, v)
			b[0] |= 0x06
			return b
		}, code: packets.MalformedPacket},
		// [MQTT-2.3.1-1] (3.1.1) / [MQTT-2.2.1-3] (5.0): packet id 0 with QoS > 0.
		{name: "packet id 0", raw: func(v packets.Version) []byte { return pub("a", "x", 1).Append(nil, v) }, code: packets.ProtocolError},
		// [MQTT-3.8.3-3] (3.1.1): SUBSCRIBE with no filter.
		{name: "empty SUBSCRIBE", raw: func(v packets.Version) []byte {
			if v == packets.V5 {
				return []byte{0x82, 0x03, 0x00, 0x01, 0x00} // empty property block
			}
			return []byte{0x82, 0x02, 0x00, 0x01}
		}, code: packets.ProtocolError},
		// 2.2.2.2: a property other than User Property twice.
		{name: "duplicate property", v5Only: true, raw: func(packets.Version) []byte {
			return publishWithProps(0x01, 0x00, 0x01, 0x00) // Payload Format Indicator twice
		}, code: packets.ProtocolError},
		// 2.2.2.2: a property not allowed in the packet is Malformed.
		{name: "property not allowed", v5Only: true, raw: func(packets.Version) []byte {
			return publishWithProps(0x11, 0x00, 0x00, 0x00, 0x01) // Session Expiry in PUBLISH
		}, code: packets.MalformedPacket},
		// [MQTT-4.12.0-1]: AUTH when no authentication method is in use; in
		// 3.1.1 packet type 15 is reserved.
		{name: "AUTH without method", raw: func(packets.Version) []byte { return []byte{0xF0, 0x00} }, code: packets.ProtocolError},
		// [MQTT-3.1.2-3]: the reserved CONNECT flag must be 0; 5.0 answers
		// CONNACK 0x81.
		{name: "CONNECT reserved flag", preConnect: true, raw: func(v packets.Version) []byte {
			b := connect(v).Append(nil)
			b[9] |= 0x01 // connect flags: header 2, name 6, level 1
			return b
		}, code: packets.MalformedPacket},
		// 3.1.2.11.10: Authentication Data without Authentication Method.
		{name: "CONNECT auth data without method", preConnect: true, v5Only: true, raw: func(v packets.Version) []byte {
			cp := connect(v)
			cp.Props.AuthData = []byte("secret")
			return cp.Append(nil)
		}, code: packets.ProtocolError},
		// [MQTT-3.1.2-11] (5.0) / [MQTT-3.1.2-13] (3.1.1): will QoS without the will flag.
		{name: "CONNECT will QoS without will", preConnect: true, raw: func(v packets.Version) []byte {
			b := connect(v).Append(nil)
			b[9] |= 0x08
			return b
		}, code: packets.MalformedPacket},
		// A packet cut short by the end of the connection: nothing to
		// answer, nothing counted; the session just ends.
		{name: "truncated packet then close", raw: func(v packets.Version) []byte { return pub("a/b", "xyz", 0).Append(nil, v)[:5] }, notCounted: true},
	}
	for _, tt := range tests {
		for _, v := range []packets.Version{packets.V311, packets.V5} {
			if tt.v5Only && v != packets.V5 {
				continue
			}
			name := tt.name + "/3.1.1"
			if v == packets.V5 {
				name = tt.name + "/5.0"
			}
			t.Run(name, func(t *testing.T) {
				before := srv.Stats().ProtocolErrors
				var c *mqtttest.Client
				if tt.preConnect {
					c = mqtttest.Dial(t, addr, v)
				} else {
					c = mqtttest.MustConnect(t, addr, connect(v))
				}
				c.Write(tt.raw(v))
				if tt.notCounted {
					c.Conn.(*net.TCPConn).CloseWrite()
				}
				switch {
				case v != packets.V5 || tt.code == 0:
					c.ExpectClosed()
				case tt.preConnect:
					ack := c.Expect(packets.CONNACK).Connack
					if ack.ReasonCode != tt.code {
						t.Errorf("CONNACK code 0x%02X, want 0x%02X", byte(ack.ReasonCode), byte(tt.code))
					}
					c.ExpectClosed()
				default:
					c.ExpectDisconnect(tt.code)
				}
				if !tt.notCounted {
					mqtttest.WaitFor(t, "ProtocolErrors to count it", func() bool { return srv.Stats().ProtocolErrors > before })
				}
				bystanderWorks(t, subscriber, publisher, "bystander")
			})
		}
	}
}

// A client refused at CONNECT for bad credentials is counted as an auth
// failure [MQTT-3.1.4-2] and closed.
func TestNotAuthorized(t *testing.T) {
	t.Parallel()
	srv, err := broker.New(broker.Options{SysInterval: -1}) // no anonymous access, no users
	if err != nil {
		t.Fatal(err)
	}
	addr := mqtttest.Serve(t, srv)
	for _, tt := range []struct {
		cp   *packets.Connect
		want packets.ReasonCode
	}{
		{mqtttest.V311("a", true), packets.ConnRefusedNotAuthorized},
		{&packets.Connect{Version: packets.V311, ClientID: "b", CleanStart: true, Username: "u", HasUsername: true, Password: []byte("p"), HasPassword: true}, packets.ConnRefusedBadUsernamePass},
		{mqtttest.V5("c"), packets.NotAuthorized},
		{&packets.Connect{Version: packets.V5, ClientID: "d", CleanStart: true, Username: "u", HasUsername: true}, packets.BadUserNameOrPassword},
	} {
		c, ack := mqtttest.Connect(t, addr, tt.cp)
		if ack.ReasonCode != tt.want {
			t.Errorf("%s: CONNACK 0x%02X, want 0x%02X", tt.cp.ClientID, byte(ack.ReasonCode), byte(tt.want))
		}
		c.ExpectClosed()
	}
	if n := srv.Stats().AuthFailures; n != 4 {
		t.Errorf("AuthFailures %d, want 4", n)
	}
}

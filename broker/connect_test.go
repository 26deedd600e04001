package broker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/fleetmq/fleetmq/broker"
	"github.com/fleetmq/fleetmq/broker/internal/mqtttest"
	"github.com/fleetmq/fleetmq/broker/packets"
)

func TestConnack(t *testing.T) {
	t.Parallel()
	_, addr := startDefault(t)
	tests := []struct {
		name     string
		connect  packets.Connect
		replyAs  packets.Version // how the CONNACK is encoded
		wantCode packets.ReasonCode
		closed   bool // the broker closes after the CONNACK
	}{
		// [MQTT-3.1.2-1] 3.1 speaks "MQIsdp" level 3.
		{"3.1 accepted", packets.Connect{Version: packets.V31, ClientID: "c31", CleanStart: true}, packets.V311, packets.ConnAccepted, false},
		{"3.1.1 accepted", packets.Connect{Version: packets.V311, ClientID: "c311", CleanStart: true}, packets.V311, packets.ConnAccepted, false},
		{"5.0 accepted", packets.Connect{Version: packets.V5, ClientID: "c5", CleanStart: true}, packets.V5, packets.Success, false},
		// [MQTT-3.1.2-2] (3.1.1): unsupported level → return code 1, then close.
		{"level 6", packets.Connect{ProtocolName: "MQTT", Version: 6, ClientID: "x", CleanStart: true}, packets.V311, packets.ConnRefusedProtocolVersion, true},
		{"MQTT level 3", packets.Connect{ProtocolName: "MQTT", Version: 3, ClientID: "x", CleanStart: true}, packets.V311, packets.ConnRefusedProtocolVersion, true},
		// [MQTT-3.1.2-2] (5.0): 0x84 Unsupported Protocol Version, then close.
		{"MQIsdp level 5", packets.Connect{ProtocolName: "MQIsdp", Version: packets.V5, ClientID: "x", CleanStart: true}, packets.V5, packets.UnsupportedProtocolVersion, true},
		// [MQTT-3.1.3-8] (3.1.1): empty id with clean session 0 → code 2.
		{"3.1.1 empty id, persistent", packets.Connect{Version: packets.V311, CleanStart: false}, packets.V311, packets.ConnRefusedIdentifierRejected, true},
		// [MQTT-3.1.3-6] (3.1.1): empty id with clean session 1 is accepted.
		{"3.1.1 empty id, clean", packets.Connect{Version: packets.V311, CleanStart: true}, packets.V311, packets.ConnAccepted, false},
		// 3.1 requires an id of 1 to 23 characters.
		{"3.1 empty id", packets.Connect{Version: packets.V31, CleanStart: true}, packets.V311, packets.ConnRefusedIdentifierRejected, true},
		{"3.1 id of 24", packets.Connect{Version: packets.V31, ClientID: strings.Repeat("a", 24), CleanStart: true}, packets.V311, packets.ConnRefusedIdentifierRejected, true},
		// No enhanced authentication method is supported [MQTT-4.12.0-1].
		{"5.0 auth method", packets.Connect{Version: packets.V5, ClientID: "x", CleanStart: true, Props: packets.Properties{AuthMethod: "SCRAM-SHA-1"}}, packets.V5, packets.BadAuthenticationMethod, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mqtttest.Dial(t, addr, tt.replyAs)
			c.Write(tt.connect.Append(nil))
			ack := c.Expect(packets.CONNACK).Connack
			if ack.ReasonCode != tt.wantCode {
				t.Fatalf("CONNACK code 0x%02X, want 0x%02X", byte(ack.ReasonCode), byte(tt.wantCode))
			}
			if ack.SessionPresent {
				// [MQTT-3.2.2-4] (3.1.1), [MQTT-3.2.2-6] (5.0)
				t.Errorf("session present set on a new session or a refusal")
			}
			if tt.closed {
				// [MQTT-3.2.2-5] (3.1.1), [MQTT-3.2.2-7] (5.0): close after a refusal.
				c.ExpectClosed()
			} else {
				c.Ping()
			}
		})
	}
}

// [MQTT-3.1.3-7] (5.0): an empty client id gets an Assigned Client Identifier.
func TestAssignedClientID(t *testing.T) {
	t.Parallel()
	_, addr := startDefault(t)
	_, a1 := mqtttest.Connect(t, addr, mqtttest.V5(""))
	_, a2 := mqtttest.Connect(t, addr, mqtttest.V5(""))
	if a1.ReasonCode != packets.Success || a1.Props.AssignedClientID == "" {
		t.Fatalf("CONNACK code 0x%02X, assigned id %q; want success and an id", byte(a1.ReasonCode), a1.Props.AssignedClientID)
	}
	if a1.Props.AssignedClientID == a2.Props.AssignedClientID {
		t.Errorf("two clients were assigned the same id %q", a1.Props.AssignedClientID)
	}
}

func TestSessionPresent(t *testing.T) {
	t.Parallel()
	_, addr := startDefault(t)
	tests := []struct {
		name          string
		first, second *packets.Connect
		want          bool
	}{
		// [MQTT-3.2.2-2] (3.1.1): session present when a stored session resumes.
		{"3.1.1 persistent", mqtttest.V311("sp1", false), mqtttest.V311("sp1", false), true},
		// [MQTT-3.2.2-1]: clean session → session present 0.
		{"3.1.1 clean", mqtttest.V311("sp2", false), mqtttest.V311("sp2", true), false},
		{"5.0 expiry", withExpiry("sp3", true, 60), withExpiry("sp3", false, 60), true},
		// [MQTT-3.2.2-2] (5.0): clean start → session present 0.
		{"5.0 clean start", withExpiry("sp4", true, 60), withExpiry("sp4", true, 60), false},
		// Session expiry 0: the session ends with the connection.
		{"5.0 no expiry", withExpiry("sp5", true, 0), withExpiry("sp5", false, 60), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mqtttest.MustConnect(t, addr, tt.first)
			c.Sub("x", 1)
			c.Disconnect()
			c2, ack := mqtttest.Connect(t, addr, tt.second)
			if ack.SessionPresent != tt.want {
				t.Fatalf("session present %v, want %v", ack.SessionPresent, tt.want)
			}
			c2.Disconnect()
		})
	}
}

// [MQTT-3.1.4-3]: a second connection with the same client id ends the
// first; a 5.0 client learns why [MQTT-3.14.0]: 0x8E Session taken over.
func TestTakeover(t *testing.T) {
	t.Parallel()
	_, addr := startDefault(t)
	for _, v := range []packets.Version{packets.V311, packets.V5} {
		old := mqtttest.MustConnect(t, addr, &packets.Connect{Version: v, ClientID: "same", KeepAlive: 60, CleanStart: true})
		old.Sub("t", 1)
		cp := &packets.Connect{Version: v, ClientID: "same", KeepAlive: 60}
		if v == packets.V5 {
			cp.Props.SessionExpiry, cp.Props.HasSessionExpiry = 60, true
		}
		c2, ack := mqtttest.Connect(t, addr, cp)
		if v == packets.V5 {
			old.ExpectDisconnect(packets.SessionTakenOver)
		} else {
			old.ExpectClosed()
		}
		if ack.ReasonCode != packets.Success {
			t.Fatalf("v%d: takeover CONNACK 0x%02X", v, byte(ack.ReasonCode))
		}
		c2.Ping()
		c2.Disconnect()
	}
}

// [MQTT-3.1.2-24] (3.1.1) / [MQTT-3.1.2-22] (5.0): no packet within 1.5 ×
// keepalive closes the connection, and the will goes out [MQTT-3.1.2-8].
func TestKeepaliveTimeout(t *testing.T) {
	t.Parallel()
	_, addr := startDefault(t)
	watcher := mqtttest.MustConnect(t, addr, mqtttest.V5("watcher"))
	watcher.Sub("will/#", 0)

	for _, v := range []packets.Version{packets.V311, packets.V5} {
		id := "silent" + string('0'+byte(v))
		cp := &packets.Connect{Version: v, ClientID: id, CleanStart: true, KeepAlive: 1,
			Will: &packets.Will{Topic: "will/" + id, Payload: []byte("gone")}}
		begin := time.Now()
		c := mqtttest.MustConnect(t, addr, cp)
		if v == packets.V5 {
			c.ExpectDisconnect(packets.KeepAliveTimeout)
		} else {
			c.ExpectClosedWithin(4 * time.Second)
		}
		if took := time.Since(begin); took < time.Second || took > 4*time.Second {
			t.Errorf("v%d: closed after %v, want about 1.5s", v, took)
		}
		checkPublish(t, watcher.ExpectPublish(), "will/"+id, "gone")
	}
}

// A client that pings within its keepalive stays connected.
func TestKeepalivePing(t *testing.T) {
	t.Parallel()
	_, addr := startDefault(t)
	cp := mqtttest.V311("pinger", true)
	cp.KeepAlive = 1
	c := mqtttest.MustConnect(t, addr, cp)
	for range 4 {
		time.Sleep(500 * time.Millisecond)
		c.Ping()
	}
}

// [MQTT-3.2.2-21]: a 5.0 client asking for more than the broker allows gets
// Server Keep Alive and must use it; the broker enforces it.
func TestServerKeepAlive(t *testing.T) {
	t.Parallel()
	_, addr := start(t, broker.Options{Limits: broker.Limits{MaxKeepAlive: 1}})
	for _, asked := range []uint16{60, 0} {
		cp := mqtttest.V5("ska")
		cp.KeepAlive = asked
		c, ack := mqtttest.Connect(t, addr, cp)
		if !ack.Props.HasServerKeepAlive || ack.Props.ServerKeepAlive != 1 {
			t.Fatalf("asked %d: Server Keep Alive %v/%d, want 1", asked, ack.Props.HasServerKeepAlive, ack.Props.ServerKeepAlive)
		}
		c.ExpectDisconnect(packets.KeepAliveTimeout)
	}
	// Within the limit: no Server Keep Alive.
	cp := mqtttest.V5("ska2")
	cp.KeepAlive = 1
	_, ack := mqtttest.Connect(t, addr, cp)
	if ack.Props.HasServerKeepAlive {
		t.Errorf("Server Keep Alive %d sent for an acceptable keepalive", ack.Props.ServerKeepAlive)
	}
}

// On takeover the old connection ends without DISCONNECT from its client,
// so its will goes out unless a will delay is still running when the new
// connection arrives (5.0 3.1.3.2.2: a new connection for the client id
// within the delay cancels it).
func TestTakeoverWill(t *testing.T) {
	t.Parallel()
	_, addr := startDefault(t)
	w := mqtttest.MustConnect(t, addr, mqtttest.V5("watcher"))
	w.Sub("will/#", 1)

	old := mqtttest.MustConnect(t, addr, withWill(mqtttest.V311("tw311", true), "will/tw311", 0))
	mqtttest.MustConnect(t, addr, mqtttest.V311("tw311", true))
	old.ExpectClosed()
	checkPublish(t, w.Receive(), "will/tw311", "bye")

	old = mqtttest.MustConnect(t, addr, withWill(withExpiry("tw5", true, 60), "will/tw5", 10))
	mqtttest.MustConnect(t, addr, withExpiry("tw5", false, 60))
	old.ExpectDisconnect(packets.SessionTakenOver)
	w.ExpectNone(quiet)
}

// Limits.MaxConnections refuses connections beyond it: 3.1.1 code 3
// (server unavailable), 5.0 0x97 (quota exceeded).
func TestMaxConnections(t *testing.T) {
	t.Parallel()
	_, addr := start(t, broker.Options{Limits: broker.Limits{MaxConnections: 1}})
	first := mqtttest.MustConnect(t, addr, mqtttest.V311("first", true))
	for _, tt := range []struct {
		cp   *packets.Connect
		want packets.ReasonCode
	}{{mqtttest.V311("second", true), packets.ConnRefusedServerUnavailable}, {mqtttest.V5("second"), packets.QuotaExceeded}} {
		c, ack := mqtttest.Connect(t, addr, tt.cp)
		if ack.ReasonCode != tt.want {
			t.Errorf("v%d: CONNACK 0x%02X, want 0x%02X", tt.cp.Version, byte(ack.ReasonCode), byte(tt.want))
		}
		c.ExpectClosed()
	}
	first.Ping()
	// Taking over a connection does not add one: it is not refused.
	_, ack := mqtttest.Connect(t, addr, mqtttest.V311("first", true))
	if ack.ReasonCode != packets.ConnAccepted {
		t.Errorf("takeover at the connection limit: CONNACK 0x%02X, want 0", byte(ack.ReasonCode))
	}
	first.ExpectClosed()
}

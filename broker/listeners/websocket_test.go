package listeners_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetmq/fleetmq/broker"
	"github.com/fleetmq/fleetmq/broker/internal/mqtttest"
	"github.com/fleetmq/fleetmq/broker/listeners"
	"github.com/fleetmq/fleetmq/broker/packets"
)

// serveWS runs a WebSocket endpoint for srv and returns its address.
func serveWS(t testing.TB, srv *broker.Server, opts listeners.WebSocketOptions) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- listeners.NewWebSocket(srv, opts).Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("WebSocket Serve returned %v, want context.Canceled", err)
		}
	})
	return ln.Addr().String()
}

// dialWS opens a WebSocket offering subprotocols; the HTTP response comes
// back too (also on failure).
func dialWS(t testing.TB, url string, cfg *tls.Config, subprotocols ...string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	// Not cancelled before the test ends: net/http may tie the upgraded
	// connection to the request's context.
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	opts := &websocket.DialOptions{Subprotocols: subprotocols}
	if cfg != nil {
		opts.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	}
	c, resp, err := websocket.Dial(ctx, url, opts)
	if err == nil {
		t.Cleanup(func() { c.CloseNow() })
	}
	return c, resp, err
}

// wsNetConn is a WebSocket MQTT connection as a client library sees it.
func wsNetConn(t testing.TB, url string, cfg *tls.Config) net.Conn {
	t.Helper()
	c, _, err := dialWS(t, url, cfg, "mqtt")
	if err != nil {
		t.Fatalf("WebSocket dial %s: %v", url, err)
	}
	if c.Subprotocol() != "mqtt" {
		t.Fatalf("subprotocol %q, want mqtt", c.Subprotocol())
	}
	return websocket.NetConn(context.Background(), c, websocket.MessageBinary)
}

// WebSocket and TCP clients share the broker: its users and ACLs, its
// subscriptions, and its sessions.
func TestWebSocket(t *testing.T) {
	t.Parallel()
	log, logs := newLog()
	defer func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	}()
	srv := newBroker(t, testPolicy(t), log)
	tcp := serveTCP(t, srv)
	url := "ws://" + serveWS(t, srv, listeners.WebSocketOptions{Log: log}) + "/mqtt"

	conn, err := net.Dial("tcp", tcp)
	if err != nil {
		t.Fatal(err)
	}
	watcher := mustConnectV5(t, conn, &paho.Connect{ClientID: "watcher", Username: "sensor", UsernameFlag: true, Password: []byte("pw"), PasswordFlag: true})
	watcher.subscribe(t, "devices/#")

	ws := mustConnectV5(t, wsNetConn(t, url, nil), &paho.Connect{ClientID: "ws", Username: "device-1", UsernameFlag: true, Password: []byte("pw"), PasswordFlag: true})
	ws.subscribe(t, "devices/device-1/cmd")
	ws.publish(t, "devices/device-1/temp", "from WebSocket")
	watcher.expect(t, "devices/device-1/temp", "from WebSocket")

	conn2, err := net.Dial("tcp", tcp)
	if err != nil {
		t.Fatal(err)
	}
	tcpDev := mustConnectV5(t, conn2, &paho.Connect{ClientID: "tcp", Username: "device-1", UsernameFlag: true, Password: []byte("pw"), PasswordFlag: true})
	tcpDev.publish(t, "devices/device-1/cmd", "from TCP")
	ws.expect(t, "devices/device-1/cmd", "from TCP")

	// The ACL holds over WebSocket too.
	ctx, cancel := contextTimeout()
	defer cancel()
	if r, _ := ws.Publish(ctx, &paho.Publish{Topic: "devices/sensor/x", QoS: 1}); r == nil || r.ReasonCode != byte(packets.NotAuthorized) {
		t.Fatalf("publish outside the ACL over WebSocket: %+v, want PUBACK 0x87", r)
	}
	// And so do passwords.
	_, ack, err := connectV5(t, wsNetConn(t, url, nil), &paho.Connect{ClientID: "bad", Username: "device-1", UsernameFlag: true, Password: []byte("nope"), PasswordFlag: true})
	if err == nil || ack == nil || ack.ReasonCode != byte(packets.BadUserNameOrPassword) {
		t.Fatalf("wrong password over WebSocket: %v, %+v; want CONNACK 0x86", err, ack)
	}
}

// A persistent session started over WebSocket (eclipse/paho.mqtt.golang's
// own ws:// transport, MQTT 3.1.1) is resumed over TCP with what it missed.
func TestWebSocketSessionResumedOverTCP(t *testing.T) {
	t.Parallel()
	srv := newBroker(t, nil, nil)
	tcp := serveTCP(t, srv)
	wsAddr := serveWS(t, srv, listeners.WebSocketOptions{Path: "/custom"})

	connect := func(broker string, got chan mqtt.Message) mqtt.Client {
		t.Helper()
		opts := mqtt.NewClientOptions().AddBroker(broker).SetClientID("dev").SetProtocolVersion(4).
			SetCleanSession(false).SetAutoReconnect(false).SetConnectTimeout(mqtttest.Timeout)
		if got != nil {
			opts.SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { got <- m })
		}
		c := mqtt.NewClient(opts)
		if tok := c.Connect(); !tok.WaitTimeout(mqtttest.Timeout) || tok.Error() != nil {
			t.Fatalf("connect to %s: %v", broker, tok.Error())
		}
		return c
	}
	ws := connect("ws://"+wsAddr+"/custom", nil)
	if tok := ws.Subscribe("queue/#", 1, nil); !tok.WaitTimeout(mqtttest.Timeout) || tok.Error() != nil {
		t.Fatalf("subscribe over WebSocket: %v", tok.Error())
	}
	ws.Disconnect(100)

	pub := mqtttest.MustConnect(t, tcp, mqtttest.V5("pub"))
	pub.Pub("queue/1", "while away", 1)

	got := make(chan mqtt.Message, 1)
	c := connect("tcp://"+tcp, got)
	defer c.Disconnect(0)
	select {
	case m := <-got:
		if m.Topic() != "queue/1" || string(m.Payload()) != "while away" {
			t.Fatalf("got %s %q", m.Topic(), m.Payload())
		}
	case <-time.After(mqtttest.Timeout):
		t.Fatal("the session made over WebSocket did not deliver its queued message over TCP")
	}
}

// MQTT packets may span WebSocket messages and a message may hold several.
func TestWebSocketFraming(t *testing.T) {
	t.Parallel()
	srv := newBroker(t, nil, nil)
	url := "ws://" + serveWS(t, srv, listeners.WebSocketOptions{}) + "/mqtt"
	c, _, err := dialWS(t, url, nil, "mqtt")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := contextTimeout()
	defer cancel()
	send := func(b []byte) {
		t.Helper()
		if err := c.Write(ctx, websocket.MessageBinary, b); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	connect := mqtttest.V5("framed").Append(nil)
	send(connect[:1]) // the fixed header's first byte alone
	send(connect[1:3])
	send(connect[3:])
	sub := &packets.Subscribe{PacketID: 1, Subscriptions: []packets.Subscription{{Filter: "f/#", SubOptions: packets.SubOptions{QoS: 0}}}}
	burst := sub.Append(nil, packets.V5)
	burst = (&packets.Publish{Topic: []byte("f/1"), Payload: []byte("one")}).Append(burst, packets.V5)
	burst = (&packets.Publish{Topic: []byte("f/2"), Payload: []byte("two")}).Append(burst, packets.V5)
	send(burst) // three packets in one message

	nc := websocket.NetConn(ctx, c, websocket.MessageBinary)
	var got []string
	for len(got) < 4 {
		nc.SetReadDeadline(time.Now().Add(mqtttest.Timeout))
		first, body, err := packets.ReadPacket(nc, nil, 0)
		if err != nil {
			t.Fatalf("read after %v: %v", got, err)
		}
		p := mqtttest.Decode(packets.V5, first, body)
		s := p.Type.String()
		if p.Publish != nil {
			s += " " + string(p.Publish.Payload)
		}
		got = append(got, s)
	}
	want := "CONNACK SUBACK PUBLISH one PUBLISH two"
	if strings.Join(got, " ") != want {
		t.Fatalf("got %q, want %q", strings.Join(got, " "), want)
	}
}

// What the endpoint refuses, and the subprotocol it selects.
func TestWebSocketHandshake(t *testing.T) {
	t.Parallel()
	log, logs := newLog()
	srv := newBroker(t, nil, nil)
	addr := serveWS(t, srv, listeners.WebSocketOptions{Log: log})

	_, resp, err := dialWS(t, "ws://"+addr+"/other", nil, "mqtt")
	if err == nil || resp == nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("wrong path: %v, %v; want 404", err, status(resp))
	}
	_, resp, err = dialWS(t, "ws://"+addr+"/mqtt", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("no subprotocol: %v, %v; want 400", err, status(resp))
	}
	waitLog(t, logs, "WebSocket upgrade refused: no mqtt subprotocol offered")
	_, resp, err = dialWS(t, "ws://"+addr+"/mqtt", nil, "wamp")
	if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("other subprotocol: %v, %v; want 400", err, status(resp))
	}
	waitLog(t, logs, "WebSocket upgrade refused", "offered=wamp")
	for _, tt := range []struct {
		offer []string
		want  string
	}{
		{[]string{"mqtt"}, "mqtt"},
		{[]string{"mqttv3.1"}, "mqttv3.1"},
		{[]string{"mqttv3.1", "mqtt"}, "mqtt"},
	} {
		c, _, err := dialWS(t, "ws://"+addr+"/mqtt", nil, tt.offer...)
		if err != nil {
			t.Errorf("offer %v: %v", tt.offer, err)
			continue
		}
		if c.Subprotocol() != tt.want {
			t.Errorf("offer %v: selected %q, want %q", tt.offer, c.Subprotocol(), tt.want)
		}
	}
	resp, err = http.Get("http://" + addr + "/mqtt")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired {
		t.Errorf("plain GET: %v, want 426", status(resp))
	}
}

func status(r *http.Response) string {
	if r == nil {
		return "no response"
	}
	return r.Status
}

// wss:// uses the TLS listener's reloadable certificate and client
// certificate mode, and never takes the username from a certificate.
func TestWebSocketTLS(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	srv := newBroker(t, testPolicy(t), nil)
	o := p.options(listeners.ClientAuthOptional)
	o.UseCommonNameAsUsername = true
	lt, err := listeners.NewTLS(o)
	if err != nil {
		t.Fatal(err)
	}
	url := "wss://" + serveWS(t, srv, listeners.WebSocketOptions{TLS: lt}) + "/mqtt"

	ws := mustConnectV5(t, wsNetConn(t, url, p.clientConfig()), &paho.Connect{ClientID: "wss", Username: "device-1", UsernameFlag: true, Password: []byte("pw"), PasswordFlag: true})
	ws.subscribe(t, "devices/device-1/#")
	ws.publish(t, "devices/device-1/x", "over wss")
	ws.expect(t, "devices/device-1/x", "over wss")

	cert := p.ca.issue(t, "device-1", false).tls(t)
	_, ack, err := connectV5(t, wsNetConn(t, url, p.clientConfig(cert)), &paho.Connect{ClientID: "cn"})
	if err == nil || ack == nil || ack.ReasonCode != byte(packets.NotAuthorized) {
		t.Fatalf("certificate without username over wss: %v, %+v; want CONNACK 0x87 (no CN username on WebSocket)", err, ack)
	}

	if _, _, err := dialWS(t, url, &tls.Config{MinVersion: tls.VersionTLS12}, "mqtt"); err == nil {
		t.Fatal("a client that does not trust the CA connected")
	}
}

// A wss:// client that never finishes its TLS handshake is closed after the
// timeout and logged, and leaves no goroutine behind.
func TestWebSocketTLSHandshakeTimeout(t *testing.T) {
	// Not parallel: it counts goroutines.
	p := newPKI(t)
	log, logs := newLog()
	srv := newBroker(t, nil, nil)
	lt, err := listeners.NewTLS(p.options(listeners.ClientAuthNone))
	if err != nil {
		t.Fatal(err)
	}
	addr := serveWS(t, srv, listeners.WebSocketOptions{TLS: lt, Log: log, ReadHeaderTimeout: 300 * time.Millisecond})
	ws := mustConnectV5(t, wsNetConn(t, "wss://"+addr+"/mqtt", p.clientConfig()), &paho.Connect{ClientID: "warm-up"})
	ws.Disconnect(&paho.Disconnect{})
	ws.conn.Close()
	mqtttest.WaitFor(t, "the warm-up client to go", func() bool { return srv.Stats().ClientsConnected == 0 })
	baseline := settledGoroutines()

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(mqtttest.Timeout))
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("the endpoint did not close a silent connection: %v", err)
	}
	waitLog(t, logs, "TLS handshake error", c.LocalAddr().String())
	c.Close()
	mqtttest.WaitFor(t, fmt.Sprintf("goroutines back to %d", baseline), func() bool {
		return settledGoroutines() <= baseline
	})
}

// Closing a WebSocket connection must not wait for the peer's close frame:
// the broker closes connections while holding locks. A client that breaks
// the protocol and then reads nothing is gone at once, not after the
// WebSocket close handshake's 5 s.
func TestWebSocketCloseDoesNotWait(t *testing.T) {
	t.Parallel()
	srv := newBroker(t, nil, nil)
	url := "ws://" + serveWS(t, srv, listeners.WebSocketOptions{}) + "/mqtt"
	c, _, err := dialWS(t, url, nil, "mqtt")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := contextTimeout()
	defer cancel()
	// CONNECT, then a reserved packet type; never read (so never answer
	// the close frame).
	msg := append(mqtttest.V311("rude", true).Append(nil), 0xF0, 0x00) // 3.1.1: no DISCONNECT to flush first
	if err := c.Write(ctx, websocket.MessageBinary, msg); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	mqtttest.WaitFor(t, "the connection to be detached", func() bool {
		return srv.Stats().ConnectsTotal == 1 && srv.Stats().ClientsConnected == 0
	})
	// A close that waited for the peer would take closeGrace (2 s), or 5 s
	// without it; teardown itself takes milliseconds.
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Fatalf("teardown took %v: Close waited for the peer", d)
	}
}

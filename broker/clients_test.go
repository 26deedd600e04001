package broker_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetmq/fleetmq/broker"
	"github.com/fleetmq/fleetmq/broker/internal/mqtttest"
)

// pahoV3 connects an eclipse/paho.mqtt.golang client (protocol 3 = 3.1,
// 4 = 3.1.1).
func pahoV3(t *testing.T, addr, id string, version uint, clean bool) mqtt.Client {
	t.Helper()
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).
		SetProtocolVersion(version).SetCleanSession(clean).SetAutoReconnect(false).
		SetConnectTimeout(mqtttest.Timeout).SetKeepAlive(30 * time.Second)
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(mqtttest.Timeout) || tok.Error() != nil {
		t.Fatalf("paho v%d connect %s: %v", version, id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c
}

func wait(t *testing.T, what string, tok mqtt.Token) {
	t.Helper()
	if !tok.WaitTimeout(mqtttest.Timeout) {
		t.Fatalf("%s: timed out", what)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// eclipse/paho.mqtt.golang speaking 3.1 and 3.1.1: QoS 0, 1 and 2 both
// ways, and a persistent session collecting messages while offline.
func TestPahoV3(t *testing.T) {
	t.Parallel()
	_, addr := startDefault(t)
	for _, version := range []uint{3, 4} {
		got := make(chan mqtt.Message, 16)
		s := pahoV3(t, addr, fmt.Sprint("s", version), version, true)
		wait(t, "subscribe", s.Subscribe(fmt.Sprint("paho/", version, "/#"), 2, func(_ mqtt.Client, m mqtt.Message) { got <- m }))
		p := pahoV3(t, addr, fmt.Sprint("p", version), version, true)
		for qos := byte(0); qos <= 2; qos++ {
			topic := fmt.Sprint("paho/", version, "/", qos)
			wait(t, "publish", p.Publish(topic, qos, false, "hello"))
			select {
			case m := <-got:
				if m.Topic() != topic || string(m.Payload()) != "hello" || m.Qos() != qos {
					t.Errorf("v%d: got %s %q QoS %d, want %s QoS %d", version, m.Topic(), m.Payload(), m.Qos(), topic, qos)
				}
			case <-time.After(mqtttest.Timeout):
				t.Fatalf("v%d QoS %d: nothing received", version, qos)
			}
		}
	}

	// Persistent session.
	got := make(chan mqtt.Message, 16)
	s := pahoV3(t, addr, "persist", 4, false)
	wait(t, "subscribe", s.Subscribe("paho/persist", 1, nil))
	s.Disconnect(100)
	p := pahoV3(t, addr, "p-persist", 4, true)
	wait(t, "publish", p.Publish("paho/persist", 1, false, "while away"))
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("persist").
		SetCleanSession(false).SetAutoReconnect(false).SetProtocolVersion(4).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { got <- m })
	s = mqtt.NewClient(opts)
	wait(t, "reconnect", s.Connect())
	defer s.Disconnect(0)
	select {
	case m := <-got:
		if string(m.Payload()) != "while away" {
			t.Errorf("got %q", m.Payload())
		}
	case <-time.After(mqtttest.Timeout):
		t.Fatal("queued message not delivered to the resumed session")
	}
}

// pahoV5 connects an eclipse/paho.golang client; received messages go to
// the returned channel and a server DISCONNECT to the other.
func pahoV5(t *testing.T, addr, id string) (*paho.Client, chan *paho.Publish, chan *paho.Disconnect) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *paho.Publish, 16)
	disc := make(chan *paho.Disconnect, 1)
	c := paho.NewClient(paho.ClientConfig{
		Conn: conn,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){
			func(pr paho.PublishReceived) (bool, error) { got <- pr.Packet; return true, nil },
		},
		OnServerDisconnect: func(d *paho.Disconnect) { disc <- d },
	})
	ctx, cancel := context.WithTimeout(context.Background(), mqtttest.Timeout)
	defer cancel()
	ack, err := c.Connect(ctx, &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 30})
	if err != nil {
		t.Fatalf("paho v5 connect %s: %v", id, err)
	}
	if ack.ReasonCode != 0 {
		t.Fatalf("paho v5 connect %s: code 0x%02X", id, ack.ReasonCode)
	}
	t.Cleanup(func() { c.Disconnect(&paho.Disconnect{}); conn.Close() })
	return c, got, disc
}

// eclipse/paho.golang speaking 5.0: QoS 0, 1 and 2 with every forwarded
// property, a subscription identifier, and DISCONNECT 0x8B on Shutdown.
func TestPahoV5(t *testing.T) {
	t.Parallel()
	srv, addr := startDefault(t)
	ctx, cancel := context.WithTimeout(context.Background(), mqtttest.Timeout)
	defer cancel()
	s, got, disc := pahoV5(t, addr, "s")
	subID := 42
	if _, err := s.Subscribe(ctx, &paho.Subscribe{
		Properties:    &paho.SubscribeProperties{SubscriptionIdentifier: &subID},
		Subscriptions: []paho.SubscribeOptions{{Topic: "paho5/#", QoS: 2}},
	}); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	p, _, _ := pahoV5(t, addr, "p")
	format := byte(1)
	for qos := byte(0); qos <= 2; qos++ {
		topic := fmt.Sprint("paho5/", qos)
		props := &paho.PublishProperties{
			PayloadFormat: &format, ContentType: "text/plain", ResponseTopic: "reply/" + topic,
			CorrelationData: []byte{qos, 0xFF},
			User:            paho.UserProperties{{Key: "k", Value: "v"}, {Key: "k", Value: "w"}},
		}
		if _, err := p.Publish(ctx, &paho.Publish{Topic: topic, QoS: qos, Payload: []byte("hi"), Properties: props}); err != nil {
			t.Fatalf("publish QoS %d: %v", qos, err)
		}
		select {
		case m := <-got:
			gp := m.Properties
			switch {
			case m.Topic != topic || string(m.Payload) != "hi" || m.QoS != qos:
				t.Errorf("got %s %q QoS %d, want %s QoS %d", m.Topic, m.Payload, m.QoS, topic, qos)
			case gp == nil || gp.PayloadFormat == nil || *gp.PayloadFormat != 1 || gp.ContentType != "text/plain" ||
				gp.ResponseTopic != props.ResponseTopic || !bytes.Equal(gp.CorrelationData, props.CorrelationData) ||
				len(gp.User) != 2 || gp.User[1] != props.User[1]:
				t.Errorf("QoS %d: properties %+v, want %+v", qos, gp, props)
			case gp.SubscriptionIdentifier == nil || *gp.SubscriptionIdentifier != subID:
				t.Errorf("QoS %d: subscription identifier %v, want 42", qos, gp.SubscriptionIdentifier)
			}
		case <-time.After(mqtttest.Timeout):
			t.Fatalf("QoS %d: nothing received", qos)
		}
	}

	sctx, scancel := context.WithTimeout(context.Background(), mqtttest.Timeout)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-disc:
		if d.ReasonCode != 0x8B {
			t.Errorf("DISCONNECT code 0x%02X, want 0x8B", d.ReasonCode)
		}
	case <-time.After(mqtttest.Timeout):
		t.Fatal("no DISCONNECT on shutdown")
	}
}

// Debian's mosquitto_pub and mosquitto_sub against the broker, in every
// protocol version they speak.
func TestMosquittoClients(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("mosquitto_sub"); err != nil {
		t.Skip("mosquitto-clients not installed")
	}
	srv, addr := start(t, broker.Options{})
	host, port, _ := net.SplitHostPort(addr)
	run := func(name string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, name, append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return string(out)
	}
	for _, v := range []string{"mqttv31", "mqttv311", "mqttv5"} {
		t.Run(v, func(t *testing.T) {
			// Retained: published first, collected by a later subscriber.
			run("mosquitto_pub", "-V", v, "-t", "smoke/"+v+"/r", "-m", "retained "+v, "-r", "-q", "1")
			if out := run("mosquitto_sub", "-V", v, "-t", "smoke/"+v+"/#", "-C", "1", "-W", "5"); strings.TrimSpace(out) != "retained "+v {
				t.Errorf("mosquitto_sub got %q, want the retained message", out)
			}
			// Live, QoS 2: the subscriber is waiting when the publisher sends.
			// Only mosquitto clients use this broker: once the last one's
			// subscription is gone, the next one counted is the new one.
			mqtttest.WaitFor(t, "earlier subscribers to leave", func() bool { return srv.Stats().Subscriptions == 0 })
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var out bytes.Buffer
			sub := exec.CommandContext(ctx, "mosquitto_sub", "-h", host, "-p", port, "-V", v, "-t", "smoke/"+v+"/live", "-q", "2", "-C", "1", "-W", "8")
			sub.Stdout, sub.Stderr = &out, &out
			if err := sub.Start(); err != nil {
				t.Fatal(err)
			}
			mqtttest.WaitFor(t, "mosquitto_sub to subscribe", func() bool { return srv.Stats().Subscriptions == 1 })
			run("mosquitto_pub", "-V", v, "-t", "smoke/"+v+"/live", "-m", "live "+v, "-q", "2")
			if err := sub.Wait(); err != nil {
				t.Fatalf("mosquitto_sub: %v\n%s", err, out.String())
			}
			if got := strings.TrimSpace(out.String()); got != "live "+v {
				t.Errorf("mosquitto_sub got %q, want %q", got, "live "+v)
			}
		})
	}
}

package broker_test

import (
	"testing"

	"github.com/fleetmq/fleetmq/broker/internal/mqtttest"
	"github.com/fleetmq/fleetmq/broker/packets"
)

func retained(topic, payload string, qos byte) *packets.Publish {
	p := pub(topic, payload, qos)
	p.Retain = true
	return p
}

// [MQTT-3.3.1-5]: a retained message is stored and sent to new
// subscribers with RETAIN set [MQTT-3.3.1-8]; [MQTT-3.3.1-7]: a new one
// replaces it; [MQTT-3.3.1-10]: an empty payload deletes it; [MQTT-3.3.1-9]
// (3.1.1): a live subscriber gets it with RETAIN clear.
func TestRetained(t *testing.T) {
	t.Parallel()
	srv, addr := startDefault(t)
	p := mqtttest.MustConnect(t, addr, mqtttest.V311("p", true))
	live := mqtttest.MustConnect(t, addr, mqtttest.V311("live", true))
	live.Sub("r/#", 1)

	p.Publish(retained("r/a", "one", 1))
	if got := live.Receive(); got.Retain {
		t.Error("live subscriber got RETAIN set [MQTT-3.3.1-9]")
	}

	newcomer := func(id string) *mqtttest.Client {
		c := mqtttest.MustConnect(t, addr, mqtttest.V311(id, true))
		c.Sub("r/+", 1)
		return c
	}
	c := newcomer("n1")
	got := c.Receive()
	checkPublish(t, got, "r/a", "one")
	if !got.Retain || got.QoS != 1 {
		t.Errorf("retained replay retain=%v qos=%d, want retain at QoS 1", got.Retain, got.QoS)
	}

	p.Publish(retained("r/a", "two", 0))
	live.Receive()
	c = newcomer("n2")
	checkPublish(t, c.Receive(), "r/a", "two")
	c.ExpectNone(quiet)
	if n := srv.Stats().Retained; n != 1 {
		t.Errorf("%d retained messages, want 1", n)
	}

	p.Publish(retained("r/a", "", 1))
	// [MQTT-3.3.1-10] (3.1.1): the empty retained message is still
	// delivered to current subscribers.
	if got := live.Receive(); len(got.Payload) != 0 {
		t.Errorf("live subscriber got %q, want the empty message", got.Payload)
	}
	c = newcomer("n3")
	c.ExpectNone(quiet)
	if n := srv.Stats().Retained; n != 0 {
		t.Errorf("%d retained messages after delete, want 0", n)
	}

	// A non-retained publish does not touch the stored one.
	p.Publish(retained("r/b", "kept", 1))
	p.Pub("r/b", "not retained", 1)
	c = newcomer("n4")
	checkPublish(t, c.Receive(), "r/b", "kept")
}

// [MQTT-3.3.1-9..11] (5.0) Retain Handling 0: send on every subscribe;
// 1: only when the subscription is new; 2: never.
func TestRetainHandling(t *testing.T) {
	t.Parallel()
	_, addr := startDefault(t)
	p := mqtttest.MustConnect(t, addr, mqtttest.V5("p"))
	p.Publish(retained("rh", "kept", 1))

	for _, tt := range []struct {
		handling    byte
		first, more bool
	}{{0, true, true}, {1, true, false}, {2, false, false}} {
		c := mqtttest.MustConnect(t, addr, mqtttest.V5("rh"))
		s := packets.Subscription{Filter: "rh", SubOptions: packets.SubOptions{QoS: 1, RetainHandling: tt.handling}}
		for i, want := range []bool{tt.first, tt.more} {
			c.Subscribe(packets.Properties{}, s)
			if want {
				got := c.Receive()
				if !got.Retain {
					t.Errorf("handling %d, subscribe %d: RETAIN clear", tt.handling, i)
				}
			} else {
				c.ExpectNone(quiet)
			}
		}
		c.Disconnect()
	}
}

// [MQTT-3.3.1-12..13] (5.0) Retain As Published: 1 keeps the RETAIN flag
// of a live message, 0 clears it.
func TestRetainAsPublished(t *testing.T) {
	t.Parallel()
	_, addr := startDefault(t)
	rap := mqtttest.MustConnect(t, addr, mqtttest.V5("rap"))
	rap.Subscribe(packets.Properties{}, packets.Subscription{Filter: "rap", SubOptions: packets.SubOptions{QoS: 1, RetainAsPublished: true}})
	plain := mqtttest.MustConnect(t, addr, mqtttest.V5("plain"))
	plain.Sub("rap", 1)

	p := mqtttest.MustConnect(t, addr, mqtttest.V5("p"))
	p.Publish(retained("rap", "r", 1))
	if got := rap.Receive(); !got.Retain {
		t.Error("retain-as-published subscriber got RETAIN clear")
	}
	if got := plain.Receive(); got.Retain {
		t.Error("plain subscriber got RETAIN set")
	}
	p.Pub("rap", "n", 1)
	if got := rap.Receive(); got.Retain {
		t.Error("retain-as-published subscriber got RETAIN on a non-retained message")
	}
}

// [MQTT-3.8.3-3] (5.0) No Local: a client's own messages are not sent back
// to it on that subscription.
func TestNoLocal(t *testing.T) {
	t.Parallel()
	_, addr := startDefault(t)
	c := mqtttest.MustConnect(t, addr, mqtttest.V5("self"))
	c.Subscribe(packets.Properties{}, packets.Subscription{Filter: "nl/#", SubOptions: packets.SubOptions{QoS: 1, NoLocal: true}})
	c.Pub("nl/a", "mine", 0)
	c.Ping()
	c.ExpectNone(quiet)

	other := mqtttest.MustConnect(t, addr, mqtttest.V5("other"))
	other.Pub("nl/a", "theirs", 1)
	checkPublish(t, c.Receive(), "nl/a", "theirs")

	// Without No Local a client does get its own messages.
	c.Sub("own", 0)
	c.Pub("own", "echo", 0)
	checkPublish(t, c.ExpectPublish(), "own", "echo")
}

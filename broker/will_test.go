package broker_test

import (
	"testing"
	"time"

	"github.com/fleetmq/fleetmq/broker/internal/mqtttest"
	"github.com/fleetmq/fleetmq/broker/packets"
)

func withWill(cp *packets.Connect, topic string, delay uint32) *packets.Connect {
	cp.Will = &packets.Will{Topic: topic, Payload: []byte("bye"), QoS: 1}
	if delay > 0 {
		cp.Will.Props.WillDelay, cp.Will.Props.HasWillDelay = delay, true
	}
	return cp
}

func TestWill(t *testing.T) {
	t.Parallel()
	_, addr := startDefault(t)
	w := mqtttest.MustConnect(t, addr, mqtttest.V5("watcher"))
	w.Sub("will/#", 1)

	t.Run("killed socket", func(t *testing.T) {
		// [MQTT-3.1.2-8]: the will is published when the connection ends
		// without DISCONNECT.
		for _, cp := range []*packets.Connect{mqtttest.V311("k311", true), mqtttest.V5("k5")} {
			c := mqtttest.MustConnect(t, addr, withWill(cp, "will/"+cp.ClientID, 0))
			c.Close()
			got := w.Receive()
			checkPublish(t, got, "will/"+cp.ClientID, "bye")
			if got.QoS != 1 {
				t.Errorf("will at QoS %d, want 1", got.QoS)
			}
		}
	})
	t.Run("normal disconnect", func(t *testing.T) {
		// [MQTT-3.1.2-10] (3.1.1) / [MQTT-3.1.2-10] (5.0): DISCONNECT
		// deletes the will.
		for _, cp := range []*packets.Connect{mqtttest.V311("n311", true), mqtttest.V5("n5")} {
			c := mqtttest.MustConnect(t, addr, withWill(cp, "will/"+cp.ClientID, 0))
			c.Disconnect()
		}
		w.ExpectNone(quiet)
	})
	t.Run("disconnect with will", func(t *testing.T) {
		// 5.0 DISCONNECT reason 0x04: publish the will anyway (3.14.2.1).
		c := mqtttest.MustConnect(t, addr, withWill(mqtttest.V5("dww"), "will/dww", 0))
		d := packets.Disconnect{ReasonCode: packets.DisconnectWithWill}
		c.Write(d.Append(nil, packets.V5))
		c.ExpectClosed()
		checkPublish(t, w.Receive(), "will/dww", "bye")
	})
	t.Run("protocol error", func(t *testing.T) {
		// A connection closed for a protocol error publishes the will.
		c := mqtttest.MustConnect(t, addr, withWill(mqtttest.V311("bad", true), "will/bad", 0))
		c.Write([]byte{0x82, 0x00}) // SUBSCRIBE without a body
		c.ExpectClosed()
		checkPublish(t, w.Receive(), "will/bad", "bye")
	})
	t.Run("retained will", func(t *testing.T) {
		cp := withWill(mqtttest.V5("rw"), "will/rw", 0)
		cp.Will.Retain = true
		c := mqtttest.MustConnect(t, addr, cp)
		c.Close()
		w.Receive()
		late := mqtttest.MustConnect(t, addr, mqtttest.V5("late"))
		late.Sub("will/rw", 0)
		if got := late.ExpectPublish(); !got.Retain {
			t.Error("retained will replayed without RETAIN")
		}
	})
}

// [MQTT-3.1.3-9] (5.0) Will Delay Interval: the will waits for the delay
// or the end of the session, whichever comes first; a reconnect within the
// delay cancels it.
func TestWillDelay(t *testing.T) {
	t.Parallel()
	_, addr := startDefault(t)
	w := mqtttest.MustConnect(t, addr, mqtttest.V5("watcher"))
	w.Sub("will/#", 1)
	begin := time.Now()

	// wd1 reconnects within its 1s delay: no will.
	c := mqtttest.MustConnect(t, addr, withWill(withExpiry("wd1", true, 30), "will/wd1", 1))
	c.Close()
	time.Sleep(200 * time.Millisecond)
	back := mqtttest.MustConnect(t, addr, withExpiry("wd1", false, 30))
	defer back.Disconnect()

	// wd2: the 1s delay passes while its session (30s) lives: will at 1s.
	c = mqtttest.MustConnect(t, addr, withWill(withExpiry("wd2", true, 30), "will/wd2", 1))
	c.Close()
	// wd3: session expiry 0 ends the session at once: will at once
	// despite a 30s delay.
	c = mqtttest.MustConnect(t, addr, withWill(withExpiry("wd3", true, 0), "will/wd3", 30))
	c.Close()
	// wd4: the session (1s) ends before the delay (30s): will at 1s.
	c = mqtttest.MustConnect(t, addr, withWill(withExpiry("wd4", true, 1), "will/wd4", 30))
	c.Close()

	at := map[string]time.Duration{}
	for len(at) < 3 {
		p := w.Receive()
		at[string(p.Topic)] = time.Since(begin)
	}
	for _, topic := range []string{"will/wd2", "will/wd3", "will/wd4"} {
		if _, ok := at[topic]; !ok {
			t.Errorf("no will on %s; got %v", topic, at)
		}
	}
	if at["will/wd3"] > at["will/wd2"] || at["will/wd3"] > at["will/wd4"] {
		t.Errorf("immediate will came after a delayed one: %v", at)
	}
	if d := at["will/wd2"]; d < 900*time.Millisecond {
		t.Errorf("wd2's will after %v, want its 1s delay", d)
	}
	// By now wd1's delay has long passed.
	w.ExpectNone(quiet)
}

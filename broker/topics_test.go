package broker_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fleetmq/fleetmq/broker"
	"github.com/fleetmq/fleetmq/broker/internal/mqtttest"
	"github.com/fleetmq/fleetmq/broker/packets"
)

// [MQTT-4.7.2-1]: filters starting with a wildcard do not match topics
// starting with $; $SYS statistics appear under $SYS/broker/.
func TestSysTopics(t *testing.T) {
	t.Parallel()
	_, addr := start(t, broker.Options{SysInterval: 50 * time.Millisecond, Version: "test"})
	all := mqtttest.MustConnect(t, addr, mqtttest.V311("all", true))
	all.Sub("#", 0)
	plus := mqtttest.MustConnect(t, addr, mqtttest.V311("plus", true))
	plus.Sub("+/broker/#", 0)
	sys := mqtttest.MustConnect(t, addr, mqtttest.V311("sys", true))
	sys.Sub("$SYS/#", 0)

	seen := map[string]string{}
	for len(seen) < 5 {
		p := sys.ExpectPublish()
		seen[string(p.Topic)] = string(p.Payload)
	}
	for _, topic := range []string{"$SYS/broker/version", "$SYS/broker/clients/connected"} {
		mqtttest.WaitFor(t, topic, func() bool {
			if _, ok := seen[topic]; ok {
				return true
			}
			p := sys.ExpectPublish()
			seen[string(p.Topic)] = string(p.Payload)
			return false
		})
	}
	if v := seen["$SYS/broker/version"]; !strings.Contains(v, "test") {
		t.Errorf("$SYS/broker/version is %q, want the configured version", v)
	}
	time.Sleep(120 * time.Millisecond) // at least two more rounds of $SYS
	all.ExpectNone(quiet)
	plus.ExpectNone(quiet)

	// A client may not publish to $-topics; v5 learns why.
	c := mqtttest.MustConnect(t, addr, mqtttest.V5("c"))
	if code := c.Publish(pub("$SYS/broker/version", "fake", 1)); code != packets.TopicNameInvalid {
		t.Errorf("PUBACK code 0x%02X for a $SYS publish, want 0x90", byte(code))
	}
}

// [MQTT-4.8.2] (5.0) shared subscriptions: each message to $share/g/f goes
// to one member of group g; every group gets its own copy; plain
// subscribers get theirs.
func TestSharedSubscriptions(t *testing.T) {
	t.Parallel()
	_, addr := startDefault(t)
	var g1 []*mqtttest.Client
	for i := range 3 {
		c := mqtttest.MustConnect(t, addr, mqtttest.V5(fmt.Sprint("g1-", i)))
		c.Sub("$share/g1/jobs/+", 1)
		g1 = append(g1, c)
	}
	g2 := mqtttest.MustConnect(t, addr, mqtttest.V311("g2", true))
	g2.Sub("$share/g2/jobs/#", 0)
	plain := mqtttest.MustConnect(t, addr, mqtttest.V5("plain"))
	plain.Sub("jobs/+", 0)

	p := mqtttest.MustConnect(t, addr, mqtttest.V5("p"))
	const n = 30
	for i := range n {
		p.Pub("jobs/x", fmt.Sprint(i), 1)
	}
	total := 0
	for i, c := range g1 {
		got := 0
		for {
			pk, ok := c.Next(quiet)
			if !ok {
				break
			}
			if pk.Publish == nil {
				t.Fatalf("member %d got %v", i, pk)
			}
			c.WriteAck(packets.PUBACK, pk.Publish.PacketID)
			got++
		}
		if got == 0 {
			t.Errorf("member %d of g1 got nothing; messages are not spread", i)
		}
		total += got
	}
	if total != n {
		t.Errorf("group g1 got %d messages, want %d (one copy each)", total, n)
	}
	for range n {
		g2.ExpectPublish()
		plain.ExpectPublish()
	}
	g2.ExpectNone(quiet)
	plain.ExpectNone(quiet)

	// Retained messages are not sent to a new shared subscription.
	p.Publish(retained("jobs/r", "kept", 1))
	g1[0].Receive()
	g2.ExpectPublish()
	plain.ExpectPublish()
	late := mqtttest.MustConnect(t, addr, mqtttest.V5("late"))
	late.Sub("$share/g3/jobs/+", 1)
	late.ExpectNone(quiet)
}

// A member that leaves stops getting messages; the rest of the group gets
// them all.
func TestSharedMemberLeaves(t *testing.T) {
	t.Parallel()
	srv, addr := startDefault(t)
	a := mqtttest.MustConnect(t, addr, mqtttest.V5("a"))
	a.Sub("$share/g/t", 0)
	b := mqtttest.MustConnect(t, addr, mqtttest.V5("b"))
	b.Sub("$share/g/t", 0)
	b.Disconnect()
	// DISCONNECT is handled asynchronously: until the broker has let b go,
	// a QoS 0 message may still be picked for it.
	mqtttest.WaitFor(t, "b to leave", func() bool { return srv.Stats().ClientsConnected == 1 })
	p := mqtttest.MustConnect(t, addr, mqtttest.V5("p"))
	for range 5 {
		p.Pub("t", "m", 0)
	}
	for range 5 {
		a.ExpectPublish()
	}
}

// SUBSCRIBE answers each filter: granted QoS, or a failure for a filter
// the broker does not accept (here: more levels than MaxTopicLevels)
// [MQTT-3.8.4-4..5] (3.1.1 0x80, 5.0 0x8F); UNSUBSCRIBE stops delivery
// [MQTT-3.10.4-1..2]. (A filter with misplaced wildcards is a malformed
// SUBSCRIBE: see TestBadInput.)
func TestSubscribeUnsubscribe(t *testing.T) {
	t.Parallel()
	_, addr := start(t, broker.Options{Limits: broker.Limits{MaxTopicLevels: 3}})
	for _, v := range []packets.Version{packets.V311, packets.V5} {
		c := mqtttest.MustConnect(t, addr, &packets.Connect{Version: v, ClientID: "su", CleanStart: true})
		ack := c.Subscribe(packets.Properties{}, sub("ok/+", 2), sub("a/b/c/d", 1), sub("ok2", 1))
		bad := packets.SubackFailure
		if v == packets.V5 {
			bad = packets.TopicFilterInvalid
		}
		want := []packets.ReasonCode{packets.GrantedQoS2, bad, packets.GrantedQoS1}
		for i := range want {
			if ack.ReasonCodes[i] != want[i] {
				t.Errorf("v%d: SUBACK codes %v, want %v", v, ack.ReasonCodes, want)
				break
			}
		}
		u := packets.Unsubscribe{PacketID: c.ID(), Filters: []string{"ok/+", "never"}}
		c.Write(u.Append(nil, v))
		ua := c.Expect(packets.UNSUBACK).Unsuback
		if ua.PacketID != u.PacketID {
			t.Errorf("UNSUBACK id %d, want %d", ua.PacketID, u.PacketID)
		}
		if v == packets.V5 && (len(ua.ReasonCodes) != 2 || ua.ReasonCodes[0] != packets.Success || ua.ReasonCodes[1] != packets.NoSubscriptionExisted) {
			t.Errorf("UNSUBACK codes %v, want [0x00 0x11]", ua.ReasonCodes)
		}
		c.Pub("ok/a", "gone", 0)
		c.Pub("ok2", "here", 0)
		checkPublish(t, c.ExpectPublish(), "ok2", "here")
		c.ExpectNone(quiet)
		c.Disconnect()
	}
}

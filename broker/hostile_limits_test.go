package broker_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/fleetmq/fleetmq/broker"
	"github.com/fleetmq/fleetmq/broker/authz"
	"github.com/fleetmq/fleetmq/broker/internal/mqtttest"
	"github.com/fleetmq/fleetmq/broker/packets"
)

// Per-user limits from the auth bundle (users[i].limits), with the
// broker's real policy, real clients over loopback and real reloads. Rate
// tests use 1 message a second and bound what gets through by the time
// they measured, never by a deadline.

// limitedBundle is isoBundle with limits set per user.
func limitedBundle(t testing.TB, rev int64, limits map[string]*authz.UserLimits, users ...string) *authz.Bundle {
	t.Helper()
	b := isoBundle(t, rev, users)
	for i := range b.Users {
		b.Users[i].Limits = limits[b.Users[i].Username]
	}
	return b
}

// startLimited runs a broker enforcing b.
func startLimited(t testing.TB, opts broker.Options, b *authz.Bundle) (*broker.Server, string) {
	t.Helper()
	opts.Auth = isoAuth(t, b)
	opts.SysInterval = -1
	srv, err := broker.New(opts)
	if err != nil {
		t.Fatalf("broker.New: %v", err)
	}
	return srv, mqtttest.Serve(t, srv)
}

func rate(perSecond, burst int64) *authz.UserLimits {
	return &authz.UserLimits{PublishRate: &authz.PublishRate{MessagesPerSecond: perSecond, Burst: burst}}
}

// connectV is a clean CONNECT of version v as user.
func connectV(v packets.Version, id, user string) *packets.Connect {
	if v == packets.V5 {
		return as(mqtttest.V5(id), user)
	}
	return as(mqtttest.V311(id, true), user)
}

var versions = []struct {
	name string
	v    packets.Version
}{{"v5", packets.V5}, {"v311", packets.V311}}

// startRated runs a broker where user "rated" may publish 1 message a
// second (burst saved up) under rated/#, and user "watch", connected, is
// subscribed there at qos.
func startRated(t *testing.T, burst int64, qos byte) (*broker.Server, string, *mqtttest.Client) {
	t.Helper()
	b := limitedBundle(t, 1, map[string]*authz.UserLimits{"rated": rate(1, burst)}, "rated", "watch")
	b.Rules = append(b.Rules, isoRule(authz.EffectAllow, []string{"watch"}, "rated/#"))
	srv, addr := startLimited(t, broker.Options{}, b)
	watch := mqtttest.MustConnect(t, addr, as(mqtttest.V5("watch"), "watch"))
	watch.Sub("rated/#", qos)
	return srv, addr, watch
}

// refilled is how many tokens a 1-a-second bucket can have gained since
// start, plus one for the second it was in.
func refilled(start time.Time) int {
	return int(math.Ceil(time.Since(start).Seconds())) + 1
}

// TestHostileUserConnections: a user at its maxConnections is refused
// (v5 0x97 Quota exceeded, 3.1.1 rc 3 server unavailable); a takeover of
// one of its own client ids adds no connection and is admitted; a
// connection that ends makes room; other users are not affected.
func TestHostileUserConnections(t *testing.T) {
	t.Parallel()
	for _, tc := range versions {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := limitedBundle(t, 1, map[string]*authz.UserLimits{"capped": {MaxConnections: 2}}, "capped", "free")
			srv, addr := startLimited(t, broker.Options{}, b)
			c1 := mqtttest.MustConnect(t, addr, connectV(tc.v, "c1", "capped"))
			c2 := mqtttest.MustConnect(t, addr, connectV(tc.v, "c2", "capped"))

			want := packets.QuotaExceeded
			if tc.v != packets.V5 {
				want = packets.ConnRefusedServerUnavailable
			}
			c3, ack := mqtttest.Connect(t, addr, connectV(tc.v, "c3", "capped"))
			if ack.ReasonCode != want {
				t.Fatalf("third connection: CONNACK 0x%02X, want 0x%02X", byte(ack.ReasonCode), byte(want))
			}
			c3.ExpectClosed()
			if got := srv.Stats().ConnectionQuotaExceeded; got != 1 {
				t.Errorf("ConnectionQuotaExceeded %d, want 1", got)
			}
			// Others have no limit of their own.
			for i := range 3 {
				mqtttest.MustConnect(t, addr, connectV(tc.v, fmt.Sprintf("free%d", i), "free"))
			}

			// Taking over c1's client id replaces a connection: admitted.
			c1b := mqtttest.MustConnect(t, addr, connectV(tc.v, "c1", "capped"))
			if tc.v == packets.V5 {
				c1.ExpectDisconnect(packets.SessionTakenOver)
			} else {
				c1.ExpectClosed()
			}
			c1b.Ping()

			// A connection that ends makes room for one more, and only one.
			c2.Disconnect()
			mqtttest.WaitFor(t, "c2 to be gone", func() bool { return srv.Stats().ClientsConnected == 4 })
			mqtttest.MustConnect(t, addr, connectV(tc.v, "c4", "capped"))
			if _, ack := mqtttest.Connect(t, addr, connectV(tc.v, "c5", "capped")); ack.ReasonCode != want {
				t.Fatalf("over the limit again: CONNACK 0x%02X, want 0x%02X", byte(ack.ReasonCode), byte(want))
			}
			if got := srv.Stats().ConnectionQuotaExceeded; got != 2 {
				t.Errorf("ConnectionQuotaExceeded %d, want 2", got)
			}
		})
	}
}

// TestHostileUserSubscriptions: a user's maxSubscriptionsPerClient
// replaces the broker's, lower or higher: past it SUBACK 0x97 (3.1.1
// 0x80), counted as the subscriptions quota.
func TestHostileUserSubscriptions(t *testing.T) {
	t.Parallel()
	b := limitedBundle(t, 1, map[string]*authz.UserLimits{
		"few":  {MaxSubscriptionsPerClient: 2},
		"many": {MaxSubscriptionsPerClient: 5},
	}, "few", "many", "plain")
	srv, addr := startLimited(t, broker.Options{Limits: broker.Limits{MaxSubscriptionsPerClient: 3}}, b)
	for _, tc := range versions {
		refused := packets.QuotaExceeded
		if tc.v != packets.V5 {
			refused = packets.SubackFailure
		}
		for _, u := range []struct {
			user    string
			granted int
		}{{"few", 2}, {"many", 5}, {"plain", 3}} {
			t.Run(tc.name+"/"+u.user, func(t *testing.T) {
				before := srv.Stats().SubscriptionQuotaExceeded
				c := mqtttest.MustConnect(t, addr, connectV(tc.v, tc.name+u.user, u.user))
				subs := make([]packets.Subscription, 8)
				for i := range subs {
					subs[i] = sub(fmt.Sprintf("%s/%d", u.user, i), 1)
				}
				codes := c.Subscribe(packets.Properties{}, subs...).ReasonCodes
				for i, code := range codes {
					want := packets.ReasonCode(1)
					if i >= u.granted {
						want = refused
					}
					if code != want {
						t.Errorf("filter %d: code 0x%02X, want 0x%02X", i, byte(code), byte(want))
					}
				}
				if got := srv.Stats().SubscriptionQuotaExceeded - before; got != int64(8-u.granted) {
					t.Errorf("SubscriptionQuotaExceeded moved by %d, want %d", got, 8-u.granted)
				}
				c.Disconnect()
			})
		}
	}
}

// TestHostileUserPublishRateV5: over its user's rate a v5 client gets
// PUBACK/PUBREC 0x97 and the message goes nowhere; the bucket is shared
// by the user's connections; a client flooding on regardless is
// disconnected with 0x96 Message rate too high.
func TestHostileUserPublishRateV5(t *testing.T) {
	t.Parallel()
	const burst = 20
	srv, addr, watch := startRated(t, burst, 1)

	p1 := mqtttest.MustConnect(t, addr, as(mqtttest.V5("p1"), "rated"))
	start := time.Now()
	var accepted []string
	refusedCode := packets.Success
	for i := 0; refusedCode == packets.Success; i++ {
		if i > burst+refilled(start) {
			t.Fatalf("%d PUBLISHes accepted at 1 a second with burst %d", i, burst)
		}
		qos := byte(1 + i%2)
		payload := fmt.Sprint(i)
		switch code := p1.Publish(pub("rated/t", payload, qos)); code {
		case packets.Success:
			accepted = append(accepted, payload)
		case packets.QuotaExceeded:
			refusedCode = code
		default:
			t.Fatalf("PUBLISH %d (QoS %d): code 0x%02X, want 0 or 0x97", i, qos, byte(code))
		}
	}
	if len(accepted) < burst {
		t.Fatalf("only %d accepted before the first refusal, want the burst of %d", len(accepted), burst)
	}
	// Both QoS 1 and QoS 2 are refused the same way.
	exhausted := time.Now()
	for _, qos := range []byte{1, 2} {
		for i := 0; ; i++ {
			if i > refilled(exhausted) {
				t.Fatalf("QoS %d: %d accepted from an exhausted bucket", qos, i)
			}
			code := p1.Publish(pub("rated/t", "late", qos))
			if code == packets.QuotaExceeded {
				break
			}
			if code != packets.Success {
				t.Fatalf("QoS %d: code 0x%02X", qos, byte(code))
			}
			accepted = append(accepted, "late")
		}
	}

	// A second connection of the same user shares the bucket.
	p2 := mqtttest.MustConnect(t, addr, as(mqtttest.V5("p2"), "rated"))
	got := 0
	for p2.Publish(pub("rated/t", "p2", 1)) == packets.Success {
		got++
		accepted = append(accepted, "p2")
		if got > refilled(exhausted) {
			t.Fatalf("second connection: %d accepted; the bucket is not shared", got)
		}
	}

	// The subscriber got exactly the accepted messages, then the marker.
	marker := mqtttest.MustConnect(t, addr, as(mqtttest.V5("marker"), "watch"))
	marker.Pub("rated/end", "end", 1)
	var received []string
	for {
		m := watch.Receive()
		if string(m.Topic) == "rated/end" {
			break
		}
		received = append(received, string(m.Payload))
	}
	if fmt.Sprint(received) != fmt.Sprint(accepted) {
		t.Errorf("delivered %v, want the accepted %v", received, accepted)
	}

	// Flooding QoS 0 regardless of the refusals ends in DISCONNECT 0x96.
	before := srv.Stats().PublishRateExceeded
	var flood []byte
	for range 300 {
		flood = pub("rated/t", "flood", 0).Append(flood, packets.V5)
	}
	p1.Write(flood)
	p1.ExpectDisconnect(packets.MessageRateTooHigh)
	// The refusals before the flood count towards it (3 so far).
	if n := srv.Stats().PublishRateExceeded - before; n < 90 || n > 300 {
		t.Errorf("PublishRateExceeded moved by %d, want about 100", n)
	}
	p2.Ping() // the other connection is not punished for it
}

// TestHostileUserPublishRateV311: 3.1.1 cannot be told of a refusal, so
// QoS 0 over the rate is dropped (and counted) and a QoS 1/2 PUBLISH over
// it closes the connection without an acknowledgement: the client keeps
// the message and sends it again once reconnected, when the bucket allows.
func TestHostileUserPublishRateV311(t *testing.T) {
	t.Parallel()
	const burst = 10
	srv, addr, watch := startRated(t, burst, 0)

	c := mqtttest.MustConnect(t, addr, as(mqtttest.V311("r3", true), "rated"))
	start := time.Now()
	var burstBytes []byte
	for i := range burst + 15 {
		burstBytes = pub("rated/q0", fmt.Sprint(i), 0).Append(burstBytes, packets.V311)
	}
	c.Write(burstBytes)
	c.Ping() // still connected: QoS 0 refusals alone (15) are no flood
	mqtttest.WaitFor(t, "the QoS 0 refusals to be counted", func() bool {
		return srv.Stats().PublishRateExceeded >= int64(15-refilled(start))
	})
	marker := mqtttest.MustConnect(t, addr, as(mqtttest.V5("marker"), "watch"))
	marker.Pub("rated/end", "end", 0)
	n := 0
	for string(watch.Receive().Topic) != "rated/end" {
		n++
	}
	if n < burst || n > burst+refilled(start) {
		t.Errorf("%d QoS 0 messages delivered, want the burst of %d (+ what %v refilled)", n, burst, time.Since(start))
	}

	// The bucket is empty: a QoS 1 PUBLISH gets no PUBACK, the connection
	// closes. (A token may come back in the meantime; then it is acked and
	// the next one closes.)
	exhausted := time.Now()
	for i := 0; ; i++ {
		if i > refilled(exhausted) {
			t.Fatalf("%d QoS 1 PUBLISHes acked from an empty bucket", i)
		}
		p := pub("rated/q1", "x", 1)
		p.PacketID = c.ID()
		c.WritePublish(p)
		got, ok := c.Next(mqtttest.Timeout)
		if !ok {
			break // closed without PUBACK
		}
		if got.Type != packets.PUBACK {
			t.Fatalf("got %v, want PUBACK or the connection closed", got)
		}
	}
	c.ExpectClosed()
}

// TestHostileUserLimitsReload: new limits apply to connected clients at
// once, without ending any of them: a lowered maxConnections refuses only
// new connections, a raised maxSubscriptionsPerClient takes effect in the
// same session (and a lowered one keeps what exists), a publish rate
// added or removed counts from the next PUBLISH.
func TestHostileUserLimitsReload(t *testing.T) {
	t.Parallel()
	for _, tc := range versions {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l1 := map[string]*authz.UserLimits{"u": {MaxConnections: 3, MaxSubscriptionsPerClient: 1}}
			srv, addr := startLimited(t, broker.Options{}, limitedBundle(t, 1, l1, "u"))
			c1 := mqtttest.MustConnect(t, addr, connectV(tc.v, "r1", "u"))
			c2 := mqtttest.MustConnect(t, addr, connectV(tc.v, "r2", "u"))
			c1.Sub("u/a", 1)
			refusedSub := packets.QuotaExceeded
			refusedConn := packets.QuotaExceeded
			if tc.v != packets.V5 {
				refusedSub, refusedConn = packets.SubackFailure, packets.ConnRefusedServerUnavailable
			}
			if code := c1.Subscribe(packets.Properties{}, sub("u/b", 1)).ReasonCodes[0]; code != refusedSub {
				t.Fatalf("second filter under limit 1: code 0x%02X, want 0x%02X", byte(code), byte(refusedSub))
			}

			l2 := map[string]*authz.UserLimits{"u": {MaxConnections: 1, MaxSubscriptionsPerClient: 3, PublishRate: &authz.PublishRate{MessagesPerSecond: 1, Burst: 2}}}
			if revoked := srv.SetAuthorizer(isoAuth(t, limitedBundle(t, 2, l2, "u"))); revoked != 0 {
				t.Fatalf("reload revoked %d sessions, want 0", revoked)
			}
			c1.Ping()
			c2.Ping()
			if got := srv.Stats().ClientsConnected; got != 2 {
				t.Fatalf("%d clients connected after lowering maxConnections, want both kept", got)
			}
			if _, ack := mqtttest.Connect(t, addr, connectV(tc.v, "r3", "u")); ack.ReasonCode != refusedConn {
				t.Fatalf("new connection over the lowered limit: CONNACK 0x%02X, want 0x%02X", byte(ack.ReasonCode), byte(refusedConn))
			}
			codes := c1.Subscribe(packets.Properties{}, sub("u/b", 1), sub("u/c", 1), sub("u/d", 1)).ReasonCodes
			if codes[0] != 1 || codes[1] != 1 || codes[2] != refusedSub {
				t.Fatalf("after raising the limit to 3: codes %v, want [1 1 0x%02X]", codes, byte(refusedSub))
			}

			// The rate now holds: the burst of 2, then a refusal (v5 0x97)
			// or the connection closed (3.1.1 QoS 1).
			start := time.Now()
			for i := 0; ; i++ {
				if i > 2+refilled(start) {
					t.Fatalf("%d PUBLISHes accepted under a rate of 1 a second, burst 2", i)
				}
				p := pub("u/z", "x", 1) // nobody subscribes: v5 0x10 until refused
				p.PacketID = c2.ID()
				c2.WritePublish(p)
				got, ok := c2.Next(mqtttest.Timeout)
				if !ok {
					if tc.v == packets.V5 {
						t.Fatal("v5 connection closed; want PUBACK 0x97")
					}
					break
				}
				if got.Type != packets.PUBACK {
					t.Fatalf("got %v, want PUBACK", got)
				}
				if got.Ack.ReasonCode == packets.QuotaExceeded {
					break
				}
			}

			// Lowering the subscription limit keeps what c1 has.
			l3 := map[string]*authz.UserLimits{"u": {MaxSubscriptionsPerClient: 1}}
			srv.SetAuthorizer(isoAuth(t, limitedBundle(t, 3, l3, "u")))
			c1.Ping()
			if n := srv.Stats().Subscriptions; n != 3 {
				t.Errorf("%d subscriptions after lowering the limit, want the 3 kept", n)
			}
			// No rate and no connection limit any more: c1 publishes at
			// once, and new connections are admitted.
			for i := range 5 {
				if code := c1.Publish(pub("u/z", fmt.Sprint(i), 1)); code.IsError() {
					t.Fatalf("PUBLISH %d after the rate was removed: code 0x%02X", i, byte(code))
				}
			}
			mqtttest.MustConnect(t, addr, connectV(tc.v, "r4", "u"))
			mqtttest.MustConnect(t, addr, connectV(tc.v, "r5", "u"))
		})
	}
}

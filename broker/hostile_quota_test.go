package broker_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/fleetmq/fleetmq/broker"
	"github.com/fleetmq/fleetmq/broker/authz"
	"github.com/fleetmq/fleetmq/broker/internal/mqtttest"
	"github.com/fleetmq/fleetmq/broker/packets"
)

// TestHostileSubscriptionFlood: one client asking for far more
// subscriptions than maxSubscriptionsPerClient (the attack held 600,000)
// gets the first ones and 0x97 Quota exceeded (3.1.1: 0x80) for every
// other filter; subscribing again to a filter it has is a replace and still
// works at the limit, as does a new one after an UNSUBSCRIBE.
func TestHostileSubscriptionFlood(t *testing.T) {
	t.Parallel()
	const limit = 1000 // the default
	srv, addr := startDefault(t)
	for _, tc := range []struct {
		name    string
		connect *packets.Connect
		refused packets.ReasonCode
	}{
		{"v5", mqtttest.V5("flood5"), packets.QuotaExceeded},
		{"v311", mqtttest.V311("flood3", true), packets.SubackFailure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := srv.Stats().SubscriptionQuotaExceeded
			c := mqtttest.MustConnect(t, addr, tc.connect)
			const batch, batches = 100, 30 // 3,000 filters
			granted, refused := 0, 0
			for b := range batches {
				subs := make([]packets.Subscription, batch)
				for i := range subs {
					subs[i] = sub(fmt.Sprintf("%s/flood/%d/%d/+", tc.name, b, i), 1)
				}
				for i, code := range c.Subscribe(packets.Properties{}, subs...).ReasonCodes {
					switch code {
					case 1:
						granted++
					case tc.refused:
						refused++
					default:
						t.Fatalf("batch %d filter %d: code 0x%02X, want 1 or 0x%02X", b, i, byte(code), byte(tc.refused))
					}
				}
			}
			if granted != limit || refused != batch*batches-limit {
				t.Fatalf("granted %d, refused %d; want %d, %d", granted, refused, limit, batch*batches-limit)
			}
			if got := srv.Stats().SubscriptionQuotaExceeded - before; got != int64(refused) {
				t.Errorf("SubscriptionQuotaExceeded moved by %d, want %d", got, refused)
			}
			// At the limit: a replace works, a new filter does not, and one
			// freed by UNSUBSCRIBE makes room.
			again := fmt.Sprintf("%s/flood/0/0/+", tc.name)
			if code := c.Subscribe(packets.Properties{}, sub(again, 0)).ReasonCodes[0]; code != 0 {
				t.Errorf("re-subscribe at the limit: code 0x%02X, want 0", byte(code))
			}
			if code := c.Subscribe(packets.Properties{}, sub(tc.name+"/new", 0)).ReasonCodes[0]; code != tc.refused {
				t.Errorf("new filter at the limit: code 0x%02X, want 0x%02X", byte(code), byte(tc.refused))
			}
			u := packets.Unsubscribe{PacketID: c.ID(), Filters: []string{again}}
			c.Write(u.Append(nil, c.Version))
			c.Expect(packets.UNSUBACK)
			c.Sub(tc.name+"/new", 0)
			c.Disconnect()
		})
	}
	// DISCONNECT is processed after the client returns; wait for it.
	mqtttest.WaitFor(t, "the clean sessions' subscriptions to go", func() bool { return srv.Stats().Subscriptions == 0 })
}

// TestHostileSubscriptionFloodDurable: the limit holds for a persistent
// session across reconnects, and subscriptions restored from the store
// count against it.
func TestHostileSubscriptionFloodDurable(t *testing.T) {
	t.Parallel()
	b := startDurable(t, broker.Options{Limits: broker.Limits{MaxSubscriptionsPerClient: 3}})
	c := mqtttest.MustConnect(t, b.addr, withExpiry("keep", true, 3600))
	codes := c.Subscribe(packets.Properties{}, sub("a", 0), sub("b", 0), sub("c", 0), sub("d", 0)).ReasonCodes
	if codes[3] != packets.QuotaExceeded {
		t.Fatalf("4th filter: code 0x%02X, want 0x97", byte(codes[3]))
	}
	c.Disconnect()
	b.restart()
	c = mqtttest.MustConnect(t, b.addr, withExpiry("keep", false, 3600))
	if code := c.Subscribe(packets.Properties{}, sub("e", 0)).ReasonCodes[0]; code != packets.QuotaExceeded {
		t.Fatalf("after restart: code 0x%02X, want 0x97", byte(code))
	}
	if n := b.srv.Stats().Subscriptions; n != 3 {
		t.Errorf("%d subscriptions, want 3", n)
	}
}

// anyUser admits every username with every right; Username is what the
// client presented, so retained quotas apply per user.
type anyUser struct{}

func (anyUser) Authenticate(name string, _ bool, _ []byte, _ string) (broker.Principal, authz.AuthResult) {
	return userPrincipal(name), authz.AuthOK
}
func (anyUser) Rebind(p broker.Principal, _ string) (broker.Principal, authz.AuthResult) {
	return p, authz.AuthOK
}
func (anyUser) AllowAnonymous() bool { return true }

type userPrincipal string

func (userPrincipal) CanPublish([]byte) bool   { return true }
func (userPrincipal) CanSubscribe(string) bool { return true }
func (userPrincipal) CanRead([]byte) bool      { return true }
func (p userPrincipal) Username() string       { return string(p) }
func (p userPrincipal) Anonymous() bool        { return p == "" }

func asUser(cp *packets.Connect, user string) *packets.Connect {
	cp.Username, cp.HasUsername = user, true
	return cp
}

// TestHostileRetainedFlood: a user storing retained messages past its
// quota (the attack held 30,000 × 16 KiB) is refused with 0x97 in v5, and
// the refused message reaches nobody; 3.1.1 is acknowledged and the
// message dropped. At the quota the user can still replace and delete its
// own messages, and other users are not affected.
func TestHostileRetainedFlood(t *testing.T) {
	t.Parallel()
	const perUser = 20
	srv, addr := start(t, broker.Options{Auth: anyUser{},
		Limits: broker.Limits{MaxRetainedPerUser: perUser, MaxRetainedBytesPerUser: 64 << 10}})
	watcher := mqtttest.MustConnect(t, addr, asUser(mqtttest.V5("watcher"), "watcher"))
	watcher.Sub("#", 1)

	v5 := mqtttest.MustConnect(t, addr, asUser(mqtttest.V5("attacker5"), "mallory"))
	for i := range perUser {
		if code := v5.Publish(retained(fmt.Sprintf("m/%d", i), "x", 1)); code != packets.NoMatchingSubscribers && code != packets.Success {
			t.Fatalf("retained %d under the quota: code 0x%02X", i, byte(code))
		}
		watcher.Receive()
	}
	before := srv.Stats()
	for i := perUser; i < perUser+50; i++ {
		if code := v5.Publish(retained(fmt.Sprintf("m/%d", i), "x", 1)); code != packets.QuotaExceeded {
			t.Fatalf("retained %d over the quota: code 0x%02X, want 0x97", i, byte(code))
		}
	}
	// QoS 2: refused in PUBREC, and the packet id is free again (a later
	// PUBLISH with it is routed, not taken for a resend).
	q2 := retained("m/q2", "x", 2)
	q2.PacketID = 77
	if code := v5.Publish(q2); code != packets.QuotaExceeded {
		t.Fatalf("QoS 2 over the quota: code 0x%02X, want 0x97", byte(code))
	}
	plain := pub("m/plain", "routed", 2)
	plain.PacketID = 77
	v5.Publish(plain)
	checkPublish(t, watcher.Receive(), "m/plain", "routed")

	// 3.1.1 cannot be told: acknowledged, dropped.
	v3 := mqtttest.MustConnect(t, addr, asUser(mqtttest.V311("attacker3", true), "mallory"))
	if code := v3.Publish(retained("m/v3", "x", 1)); code != packets.Success {
		t.Fatalf("3.1.1 over the quota: code 0x%02X, want 0 (acknowledged)", byte(code))
	}
	v3.Ping()
	watcher.ExpectNone(quiet)
	after := srv.Stats()
	if got := after.RetainedQuotaExceeded - before.RetainedQuotaExceeded; got != 52 {
		t.Errorf("RetainedQuotaExceeded moved by %d, want 52", got)
	}
	if after.Retained != perUser {
		t.Errorf("%d retained messages, want %d", after.Retained, perUser)
	}

	// At the quota: replace and delete work; deleting frees a place.
	if code := v5.Publish(retained("m/0", "replaced", 1)); code.IsError() {
		t.Fatalf("replace at the quota: code 0x%02X", byte(code))
	}
	checkPublish(t, watcher.Receive(), "m/0", "replaced")
	if code := v5.Publish(retained("m/1", "", 1)); code.IsError() {
		t.Fatalf("delete at the quota: code 0x%02X", byte(code))
	}
	watcher.Receive()
	if code := v5.Publish(retained("m/new", "x", 1)); code.IsError() {
		t.Fatalf("new message after a delete: code 0x%02X", byte(code))
	}
	watcher.Receive()

	// Bytes: 16 KiB payloads fill 64 KiB after three (topic bytes count).
	big := strings.Repeat("b", 16<<10)
	heavy := mqtttest.MustConnect(t, addr, asUser(mqtttest.V5("heavy"), "heavy"))
	for i := range 3 {
		if code := heavy.Publish(retained(fmt.Sprintf("h/%d", i), big, 1)); code.IsError() {
			t.Fatalf("16 KiB retained %d: code 0x%02X", i, byte(code))
		}
		watcher.Receive()
	}
	if code := heavy.Publish(retained("h/4", big, 1)); code != packets.QuotaExceeded {
		t.Fatalf("past the byte quota: code 0x%02X, want 0x97", byte(code))
	}
	// A smaller replacement fits where a new message does not.
	if code := heavy.Publish(retained("h/0", "small", 1)); code.IsError() {
		t.Fatalf("smaller replacement: code 0x%02X", byte(code))
	}
	watcher.Receive()

	// Another user is not affected by mallory's quota.
	other := mqtttest.MustConnect(t, addr, asUser(mqtttest.V5("other"), "alice"))
	if code := other.Publish(retained("a/1", "x", 1)); code.IsError() {
		t.Fatalf("another user: code 0x%02X", byte(code))
	}
	checkPublish(t, watcher.Receive(), "a/1", "x")
}

// TestHostileRetainedTotal: the broker-wide limits hold across users, a
// retained will over them is not retained, and messages restored from the
// store count against them.
func TestHostileRetainedTotal(t *testing.T) {
	t.Parallel()
	b := startDurable(t, broker.Options{Auth: anyUser{}, Limits: broker.Limits{MaxRetainedMessages: 4}})
	for i := range 4 {
		c := mqtttest.MustConnect(t, b.addr, asUser(mqtttest.V5(fmt.Sprintf("u%d", i)), fmt.Sprintf("user%d", i)))
		if code := c.Publish(retained(fmt.Sprintf("t/%d", i), "x", 1)); code.IsError() {
			t.Fatalf("user%d: code 0x%02X", i, byte(code))
		}
		c.Disconnect()
	}
	c := mqtttest.MustConnect(t, b.addr, asUser(mqtttest.V5("u4"), "user4"))
	if code := c.Publish(retained("t/4", "x", 1)); code != packets.QuotaExceeded {
		t.Fatalf("past the total: code 0x%02X, want 0x97", byte(code))
	}
	// A will with retain past the total is published but not retained.
	w := asUser(mqtttest.V5("willer"), "user5")
	w.Will = &packets.Will{Topic: "t/will", Payload: []byte("gone"), Retain: true}
	mqtttest.MustConnect(t, b.addr, w).Close()
	mqtttest.WaitFor(t, "the will refused", func() bool { return b.srv.Stats().RetainedQuotaExceeded == 2 })

	b.restart()
	if n := b.srv.Stats().Retained; n != 4 {
		t.Fatalf("%d retained after restart, want 4", n)
	}
	c = mqtttest.MustConnect(t, b.addr, asUser(mqtttest.V5("u4"), "user4"))
	if code := c.Publish(retained("t/4", "x", 1)); code != packets.QuotaExceeded {
		t.Fatalf("past the total after restart: code 0x%02X, want 0x97", byte(code))
	}
	// Restored messages can be replaced and deleted like any other.
	if code := c.Publish(retained("t/0", "y", 1)); code.IsError() {
		t.Fatalf("replace a restored message: code 0x%02X", byte(code))
	}
	if code := c.Publish(retained("t/1", "", 1)); code.IsError() {
		t.Fatalf("delete a restored message: code 0x%02X", byte(code))
	}
	if code := c.Publish(retained("t/4", "x", 1)); code.IsError() {
		t.Fatalf("after a delete: code 0x%02X", byte(code))
	}
}

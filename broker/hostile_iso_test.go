package broker_test

import (
	"sync"
	"testing"

	"github.com/fleetmq/fleetmq/broker"
	"github.com/fleetmq/fleetmq/broker/admin"
	"github.com/fleetmq/fleetmq/broker/authz"
	"github.com/fleetmq/fleetmq/broker/internal/mqtttest"
	"github.com/fleetmq/fleetmq/broker/packets"
)

// Isolation between users: each test is an attack by one user of a broker
// on another's session, messages or will, with the broker's real policy
// (authz bundles, admin.PolicyAuthorizer) and real reloads.

var isoHashes sync.Map // password → $7$ hash, so fixtures stay fast

// isoUser is a bundle user whose password is "<name>-pw".
func isoUser(t testing.TB, name string) authz.User {
	t.Helper()
	pw := name + "-pw"
	if h, ok := isoHashes.Load(pw); ok {
		return authz.User{Username: name, PasswordHash: h.(string)}
	}
	h, err := authz.HashPassword([]byte(pw), 1000)
	if err != nil {
		t.Fatalf("HashPassword: %v", err)
	}
	actual, _ := isoHashes.LoadOrStore(pw, h)
	return authz.User{Username: name, PasswordHash: actual.(string)}
}

// isoRule allows (or denies) users both actions on topics.
func isoRule(effect authz.Effect, users []string, topics ...string) authz.Rule {
	return authz.Rule{Subjects: authz.Subjects{Users: users}, Topics: topics,
		Actions: []authz.Action{authz.ActionPublish, authz.ActionSubscribe}, Effect: effect}
}

// isoBundle is a bundle of users (each may publish and subscribe under
// "<name>/#") and the extra rules.
func isoBundle(t testing.TB, rev int64, users []string, rules ...authz.Rule) *authz.Bundle {
	t.Helper()
	b := &authz.Bundle{APIVersion: authz.APIVersion, Revision: rev}
	for _, u := range users {
		b.Users = append(b.Users, isoUser(t, u))
		b.Rules = append(b.Rules, isoRule(authz.EffectAllow, []string{u}, u+"/#"))
	}
	b.Rules = append(b.Rules, rules...)
	return b
}

// isoAuth compiles b into the broker's Authorizer.
func isoAuth(t testing.TB, b *authz.Bundle) broker.Authorizer {
	t.Helper()
	p, err := authz.Compile(b)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return admin.PolicyAuthorizer(p)
}

// isoPolicy is isoAuth(isoBundle(...)).
func isoPolicy(t testing.TB, rev int64, users []string, rules ...authz.Rule) broker.Authorizer {
	t.Helper()
	return isoAuth(t, isoBundle(t, rev, users, rules...))
}

// as makes cp log in as user (password "<user>-pw").
func as(cp *packets.Connect, user string) *packets.Connect {
	cp.Username, cp.HasUsername = user, true
	cp.Password, cp.HasPassword = []byte(user+"-pw"), true
	return cp
}

// persistent is a CONNECT resuming (or starting) a persistent session.
func persistent(v packets.Version, id string) *packets.Connect {
	if v == packets.V5 {
		return withExpiry(id, false, 300)
	}
	return mqtttest.V311(id, false)
}

// TestIsoForeignTakeoverRefused: bob, who knows alice's client id, connects
// with it. He must neither get her session (its queued messages, which his
// ACL would never let him subscribe to) nor kick her off: CONNACK Not
// authorized, and alice keeps connection and session.
func TestIsoForeignTakeoverRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		v           packets.Version
		ownerOnline bool
		clean       bool // bob asks for a clean start
		want        packets.ReasonCode
	}{
		{"v5 owner offline", packets.V5, false, false, packets.NotAuthorized},
		{"v5 owner online", packets.V5, true, false, packets.NotAuthorized},
		{"v5 owner online, clean start", packets.V5, true, true, packets.NotAuthorized},
		{"3.1.1 owner offline", packets.V311, false, false, packets.ConnRefusedNotAuthorized},
		{"3.1.1 owner online", packets.V311, true, false, packets.ConnRefusedNotAuthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, addr := start(t, broker.Options{Auth: isoPolicy(t, 1, []string{"alice", "bob", "pub"},
				isoRule(authz.EffectAllow, []string{"pub"}, "#"))})
			alice := mqtttest.MustConnect(t, addr, as(persistent(tc.v, "dev-1"), "alice"))
			alice.Sub("alice/#", 1)
			if !tc.ownerOnline {
				alice.Disconnect()
			}
			p := mqtttest.MustConnect(t, addr, as(mqtttest.V5("pub"), "pub"))
			p.Pub("alice/secret", "for alice", 1)

			cp := as(persistent(tc.v, "dev-1"), "bob")
			cp.CleanStart = tc.clean
			bob, ack := mqtttest.Connect(t, addr, cp)
			if ack.ReasonCode != tc.want || ack.SessionPresent {
				t.Fatalf("bob's CONNACK: code 0x%02X session present %v, want 0x%02X and no session", byte(ack.ReasonCode), ack.SessionPresent, byte(tc.want))
			}
			bob.ExpectClosed()
			if n := srv.Stats().TakeoverRefused; n != 1 {
				t.Errorf("TakeoverRefused = %d, want 1", n)
			}

			if tc.ownerOnline {
				checkPublish(t, alice.Receive(), "alice/secret", "for alice")
				bystanderWorks(t, alice, p, "alice/still")
				return
			}
			alice, ack = mqtttest.Connect(t, addr, as(persistent(tc.v, "dev-1"), "alice"))
			if ack.ReasonCode != packets.Success || !ack.SessionPresent {
				t.Fatalf("alice's CONNACK: code 0x%02X session present %v, want her session back", byte(ack.ReasonCode), ack.SessionPresent)
			}
			checkPublish(t, alice.Receive(), "alice/secret", "for alice")
		})
	}
}

// TestIsoForeignTakeoverDiscard: with SessionTakeover discard, bob's
// CONNECT ends alice's connection and session and starts him afresh: he
// gets nothing of hers.
func TestIsoForeignTakeoverDiscard(t *testing.T) {
	t.Parallel()
	srv, addr := start(t, broker.Options{SessionTakeover: broker.SessionTakeoverDiscard,
		Auth: isoPolicy(t, 1, []string{"alice", "bob", "pub"}, isoRule(authz.EffectAllow, []string{"pub"}, "#"))})
	alice := mqtttest.MustConnect(t, addr, as(persistent(packets.V5, "dev-1"), "alice"))
	alice.Sub("alice/#", 1)
	p := mqtttest.MustConnect(t, addr, as(mqtttest.V5("pub"), "pub"))
	alice.Disconnect()
	p.Pub("alice/secret", "for alice", 1)
	alice = mqtttest.MustConnect(t, addr, as(mqtttest.V5("dev-1"), "alice")) // online again, clean

	bob, ack := mqtttest.Connect(t, addr, as(persistent(packets.V5, "dev-1"), "bob"))
	if ack.ReasonCode != packets.Success || ack.SessionPresent {
		t.Fatalf("bob's CONNACK: code 0x%02X session present %v, want a fresh session", byte(ack.ReasonCode), ack.SessionPresent)
	}
	alice.ExpectDisconnect(packets.SessionTakenOver)
	bob.ExpectNone(quiet)
	if s := srv.Stats(); s.TakeoverDiscarded != 1 || s.TakeoverRefused != 0 {
		t.Errorf("TakeoverDiscarded %d, TakeoverRefused %d, want 1 and 0", s.TakeoverDiscarded, s.TakeoverRefused)
	}
}

// TestIsoForeignTakeoverAfterRestart: a persistent session keeps its owner
// in the store, so a restart does not hand it to the first comer.
func TestIsoForeignTakeoverAfterRestart(t *testing.T) {
	t.Parallel()
	b := startDurable(t, broker.Options{Auth: isoPolicy(t, 1, []string{"alice", "bob", "pub"},
		isoRule(authz.EffectAllow, []string{"pub"}, "#"))})
	alice := mqtttest.MustConnect(t, b.addr, as(persistent(packets.V5, "dev-1"), "alice"))
	alice.Sub("alice/#", 1)
	alice.Disconnect()
	p := mqtttest.MustConnect(t, b.addr, as(mqtttest.V5("pub"), "pub"))
	p.Pub("alice/secret", "for alice", 1)
	b.restart()

	bob, ack := mqtttest.Connect(t, b.addr, as(persistent(packets.V5, "dev-1"), "bob"))
	if ack.ReasonCode != packets.NotAuthorized || ack.SessionPresent {
		t.Fatalf("bob's CONNACK after the restart: code 0x%02X session present %v, want 0x87", byte(ack.ReasonCode), ack.SessionPresent)
	}
	bob.ExpectClosed()
	alice, ack = mqtttest.Connect(t, b.addr, as(persistent(packets.V5, "dev-1"), "alice"))
	if ack.ReasonCode != packets.Success || !ack.SessionPresent {
		t.Fatalf("alice's CONNACK after the restart: code 0x%02X session present %v, want her session", byte(ack.ReasonCode), ack.SessionPresent)
	}
	checkPublish(t, alice.Receive(), "alice/secret", "for alice")
}

// TestIsoReloadDeniesWhatASessionHolds: a reload that denies alice a
// topic also holds for what her session already holds on it, queued while
// she was away or inflight (sent, not acknowledged) when she left: none of
// it reaches her on reconnect; what she may still read does.
func TestIsoReloadDeniesWhatASessionHolds(t *testing.T) {
	t.Parallel()
	users := []string{"alice", "pub"}
	pubAll := isoRule(authz.EffectAllow, []string{"pub"}, "#")
	srv, addr := start(t, broker.Options{Auth: isoPolicy(t, 1, users, pubAll)})
	alice := mqtttest.MustConnect(t, addr, as(persistent(packets.V5, "dev-1"), "alice"))
	alice.Sub("alice/#", 1)
	p := mqtttest.MustConnect(t, addr, as(mqtttest.V5("pub"), "pub"))
	p.Pub("alice/secret/inflight", "1", 1)
	checkPublish(t, alice.ExpectPublish(), "alice/secret/inflight", "1") // not acknowledged
	alice.Close()
	mqtttest.WaitFor(t, "alice gone", func() bool { return srv.Stats().ClientsConnected == 1 })
	p.Pub("alice/secret/queued", "2", 1)
	p.Pub("alice/ok", "3", 1)

	srv.SetAuthorizer(isoPolicy(t, 2, users, pubAll, isoRule(authz.EffectDeny, []string{"alice"}, "alice/secret/#")))
	alice, ack := mqtttest.Connect(t, addr, as(persistent(packets.V5, "dev-1"), "alice"))
	if !ack.SessionPresent {
		t.Fatalf("alice's session is gone: CONNACK %+v", ack)
	}
	checkPublish(t, alice.Receive(), "alice/ok", "3")
	alice.ExpectNone(quiet)
	if n := srv.Stats().DeliveryDenied; n != 2 {
		t.Errorf("DeliveryDenied = %d, want 2; %+v", n, srv.Stats())
	}
}

// TestIsoReloadDeniesHeldQoS2: a QoS 2 delivery to a durable session waits
// for the store before its PUBLISH goes out; a reload that denies its topic
// meanwhile stops it.
func TestIsoReloadDeniesHeldQoS2(t *testing.T) {
	t.Parallel()
	users := []string{"alice", "pub"}
	pubAll := isoRule(authz.EffectAllow, []string{"pub"}, "#")
	st := &heldStore{}
	srv, err := broker.New(broker.Options{Store: st, SysInterval: -1, Auth: isoPolicy(t, 1, users, pubAll)})
	if err != nil {
		t.Fatal(err)
	}
	addr := mqtttest.Serve(t, srv)
	alice := mqtttest.MustConnect(t, addr, as(persistent(packets.V5, "dev-1"), "alice"))
	sp := packets.Subscribe{PacketID: 1, Subscriptions: []packets.Subscription{sub("alice/#", 2)}}
	alice.Write(sp.Append(nil, alice.Version))
	alice.ExpectNone(quiet) // the SUBACK waits for the store
	st.release()
	alice.Expect(packets.SUBACK)
	p := mqtttest.MustConnect(t, addr, as(mqtttest.V5("pub"), "pub"))
	p.WritePublish(&packets.Publish{Topic: []byte("alice/secret"), Payload: []byte("x"), QoS: 2, PacketID: 1})
	mqtttest.WaitFor(t, "the delivery written", func() bool { return st.writes() > 0 })
	p.ExpectNone(quiet) // its PUBREC waits for the store; routing has held the delivery

	srv.SetAuthorizer(isoPolicy(t, 2, users, pubAll, isoRule(authz.EffectDeny, []string{"alice"}, "alice/secret/#")))
	st.release()
	alice.ExpectNone(quiet)
	if n := srv.Stats().DeliveryDenied; n != 1 {
		t.Errorf("DeliveryDenied = %d, want 1", n)
	}
}

// TestIsoRevokedUserWillNotPublished: a reload that removes or disables
// alice disconnects her, and her will goes with her rights: not
// published, not retained, not kept in the store for after a restart.
func TestIsoRevokedUserWillNotPublished(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		revoke func(b *authz.Bundle)
	}{
		{"removed", func(b *authz.Bundle) { b.Users = b.Users[1:] }},
		{"disabled", func(b *authz.Bundle) { b.Users[0].Disabled = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			users := []string{"alice", "watch"}
			watchAll := isoRule(authz.EffectAllow, []string{"watch"}, "#")
			b := startDurable(t, broker.Options{Auth: isoPolicy(t, 1, users, watchAll)})
			watch := mqtttest.MustConnect(t, b.addr, as(persistent(packets.V5, "watch"), "watch"))
			watch.Sub("alice/#", 1)
			for _, cp := range []*packets.Connect{
				withWill(mqtttest.V5("alice-clean"), "alice/will/clean", 0),
				withWill(persistent(packets.V5, "alice-kept"), "alice/will/kept", 0),
				withWill(persistent(packets.V5, "alice-late"), "alice/will/late", 1),
			} {
				cp.Will.Retain = true
				mqtttest.MustConnect(t, b.addr, as(cp, "alice"))
			}
			bundle := isoBundle(t, 2, users, watchAll)
			tc.revoke(bundle)
			if n := b.srv.SetAuthorizer(isoAuth(t, bundle)); n != 3 {
				t.Fatalf("SetAuthorizer revoked %d sessions, want 3", n)
			}
			watch.ExpectNone(10 * quiet) // past the delayed one (1 s)
			if n := b.srv.Stats().WillsRevoked; n != 3 {
				t.Errorf("WillsRevoked = %d, want 3", n)
			}
			b.restart()
			watch = mqtttest.MustConnect(t, b.addr, as(persistent(packets.V5, "watch"), "watch"))
			fresh := mqtttest.MustConnect(t, b.addr, as(mqtttest.V5("fresh"), "watch"))
			fresh.Sub("alice/#", 1) // retained wills would come now
			watch.ExpectNone(10 * quiet)
			fresh.ExpectNone(quiet)
		})
	}
}

// TestIsoSharedGroupSkipsMembersThatMayNotRead: bob shares a group with
// alice but may not read jobs/secret/#. Messages there must all go to
// alice, not be lost whenever bob's turn comes.
func TestIsoSharedGroupSkipsMembersThatMayNotRead(t *testing.T) {
	t.Parallel()
	srv, addr := start(t, broker.Options{Auth: isoPolicy(t, 1, []string{"alice", "bob", "pub"},
		isoRule(authz.EffectAllow, []string{"pub"}, "#"),
		isoRule(authz.EffectAllow, []string{"alice", "bob"}, "jobs/#"),
		isoRule(authz.EffectDeny, []string{"bob"}, "jobs/secret/#"))})
	alice := mqtttest.MustConnect(t, addr, as(mqtttest.V5("alice"), "alice"))
	alice.Sub("$share/g/jobs/#", 1)
	bob := mqtttest.MustConnect(t, addr, as(mqtttest.V5("bob"), "bob"))
	bob.Sub("$share/g/jobs/#", 1)
	p := mqtttest.MustConnect(t, addr, as(mqtttest.V5("pub"), "pub"))
	const n = 10
	for i := range n {
		p.Pub("jobs/secret/"+string(rune('0'+i)), "x", 1)
	}
	for i := range n {
		checkPublish(t, alice.Receive(), "jobs/secret/"+string(rune('0'+i)), "x")
	}
	bob.ExpectNone(quiet)
	if d := srv.Stats().DeliveryDenied; d != 0 {
		t.Errorf("DeliveryDenied = %d, want 0: no member that may not read is picked", d)
	}
	// Open jobs still go round the whole group.
	p.Pub("jobs/open/1", "x", 1)
	p.Pub("jobs/open/2", "x", 1)
	alice.Receive()
	bob.Receive()
}

// TestIsoWillCannotSpoofSys: on a broker open to anonymous clients, a will
// on a $SYS topic is neither published, retained nor stored for after a
// restart: $-topics are the broker's.
func TestIsoWillCannotSpoofSys(t *testing.T) {
	t.Parallel()
	b := startDurable(t, broker.Options{})
	watch := mqtttest.MustConnect(t, b.addr, persistent(packets.V5, "watch"))
	watch.Sub("$SYS/#", 1)
	for _, cp := range []*packets.Connect{
		withWill(mqtttest.V5("spoof-now"), "$SYS/broker/version", 0),
		withWill(persistent(packets.V5, "spoof-kept"), "$SYS/broker/clients/connected", 0),
	} {
		cp.Will.Retain = true
		mqtttest.MustConnect(t, b.addr, cp).Close()
	}
	watch.ExpectNone(quiet)
	if st := b.srv.Stats(); st.PublishDenied != 2 || st.WillsReservedTopic != 2 {
		t.Errorf("PublishDenied = %d, WillsReservedTopic = %d, want 2 and 2", st.PublishDenied, st.WillsReservedTopic)
	}
	mqtttest.MustConnect(t, b.addr, withWill(persistent(packets.V5, "spoof-stored"), "$SYS/broker/uptime", 0))
	b.restart()
	watch = mqtttest.MustConnect(t, b.addr, persistent(packets.V5, "watch"))
	fresh := mqtttest.MustConnect(t, b.addr, mqtttest.V5("fresh"))
	fresh.Sub("$SYS/#", 1) // a retained will would come now
	watch.ExpectNone(quiet)
	fresh.ExpectNone(quiet)
}

package broker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/fleetmq/fleetmq/broker"
	"github.com/fleetmq/fleetmq/broker/authz"
	"github.com/fleetmq/fleetmq/broker/internal/mqtttest"
	"github.com/fleetmq/fleetmq/broker/packets"
)

// persistentWithWill is a v5 CONNECT for a persistent session (expiry
// 300 s) with a will on will/<id>, delayed by delay seconds.
func persistentWithWill(id string, delay uint32) *packets.Connect {
	cp := withWill(mqtttest.V5(id), "will/"+id, delay)
	cp.CleanStart = false
	cp.Props.SessionExpiry, cp.Props.HasSessionExpiry = 300, true
	return cp
}

// TestPersistWillAcrossRestart: a will is session state. A client still
// connected when the broker stops (here gracefully; a kill is the same to
// the store) is owed its will after the restart, as if its connection had
// dropped then: after the will delay, unless it reconnects first; not at
// all if it had sent DISCONNECT.
func TestPersistWillAcrossRestart(t *testing.T) {
	t.Parallel()
	b := startDurable(t, broker.Options{})
	watch := mqtttest.MustConnect(t, b.addr, mqtttest.V311("watcher", false))
	watch.Sub("will/#", 1)
	watch.Disconnect()

	mqtttest.MustConnect(t, b.addr, persistentWithWill("now", 0))
	mqtttest.MustConnect(t, b.addr, persistentWithWill("later", 1))
	mqtttest.MustConnect(t, b.addr, persistentWithWill("returns", 1))
	bye := mqtttest.MustConnect(t, b.addr, persistentWithWill("bye", 0))
	bye.Disconnect()
	b.restart()

	back := mqtttest.MustConnect(t, b.addr, persistentWithWill("returns", 1))
	defer back.Close()
	watch = mqtttest.MustConnect(t, b.addr, mqtttest.V311("watcher", false))
	got := map[string]bool{}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		pk, ok := watch.Next(100 * time.Millisecond)
		if !ok {
			continue
		}
		if pk.Publish == nil {
			t.Fatalf("watcher got %v", pk)
		}
		topic := string(pk.Publish.Topic)
		checkPublish(t, pk.Publish, topic, "bye")
		got[topic] = true
		if pk.Publish.QoS > 0 {
			watch.WriteAck(packets.PUBACK, pk.Publish.PacketID)
		}
	}
	if !got["will/now"] || !got["will/later"] || len(got) != 2 {
		t.Fatalf("wills published after the restart: %v, want will/now and will/later only", got)
	}
}

// TestPersistWillAuthorizedAfterRestart: a restored will is published under
// the rules in force after the restart, for the user who connected with
// it: not when that user is gone, nor to a topic the user may no longer
// publish to.
func TestPersistWillAuthorizedAfterRestart(t *testing.T) {
	t.Parallel()
	auth := &namedAuth{users: map[string]string{"alice": "will/", "bob": "will/"}}
	b := startDurable(t, broker.Options{Auth: auth})
	watcher := mqtttest.V311("watcher", false)
	watcher.Username, watcher.HasUsername = "alice", true
	watch := mqtttest.MustConnect(t, b.addr, watcher)
	watch.Sub("will/#", 1)
	watch.Disconnect()
	for _, u := range []string{"alice", "bob", "carol"} {
		if u == "carol" {
			auth.set("carol", "will/")
		}
		cp := persistentWithWill(u, 0)
		cp.Username, cp.HasUsername = u, true
		mqtttest.MustConnect(t, b.addr, cp)
	}
	auth.set("bob", "")         // gone
	auth.set("carol", "other/") // may not publish to will/ any more
	b.restart()

	watch = mqtttest.MustConnect(t, b.addr, watcher)
	got := watch.Receive()
	if string(got.Topic) != "will/alice" {
		t.Fatalf("got a will on %s, want will/alice", got.Topic)
	}
	watch.WriteAck(packets.PUBACK, got.PacketID)
	watch.ExpectNone(quiet)
}

// namedAuth admits the users it knows, without passwords; each may
// publish under its topic prefix. Safe for one writer (the test) and the
// broker's readers because every change happens while the broker stops.
type namedAuth struct{ users map[string]string }

func (a *namedAuth) set(user, prefix string) {
	if prefix == "" {
		delete(a.users, user)
		return
	}
	a.users[user] = prefix
}

func (a *namedAuth) Authenticate(user string, has bool, _ []byte, _ string) (broker.Principal, authz.AuthResult) {
	if !has {
		return nil, authz.AuthNotAuthorized
	}
	return a.AuthenticateVerified(user, "")
}

func (a *namedAuth) AuthenticateVerified(user, _ string) (broker.Principal, authz.AuthResult) {
	prefix, ok := a.users[user]
	if !ok {
		return nil, authz.AuthBadCredentials
	}
	return namedPrincipal{user, prefix}, authz.AuthOK
}

func (a *namedAuth) Rebind(old broker.Principal, id string) (broker.Principal, authz.AuthResult) {
	return a.AuthenticateVerified(old.(namedPrincipal).name, id)
}

func (a *namedAuth) AllowAnonymous() bool { return false }

type namedPrincipal struct{ name, prefix string }

func (p namedPrincipal) Username() string         { return p.name }
func (p namedPrincipal) Anonymous() bool          { return false }
func (p namedPrincipal) CanPublish(t []byte) bool { return strings.HasPrefix(string(t), p.prefix) }
func (p namedPrincipal) CanSubscribe(string) bool { return true }
func (p namedPrincipal) CanRead([]byte) bool      { return true }

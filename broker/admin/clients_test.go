package admin_test

import (
	"testing"

	"github.com/fleetmq/fleetmq/broker/authz"
)

// clientsBundle: sensors publish and subscribe under sensors/<user>/#; the
// monitor reads sensors/# except the secret sub-trees; the gateway
// publishes anywhere under sensors/; dave is disabled.
func clientsBundle(t testing.TB) authz.Bundle {
	dave := user(t, "dave", "sensors")
	dave.Disabled = true
	return authz.Bundle{
		Revision: 1,
		Users:    []authz.User{user(t, "alice", "sensors"), user(t, "bob", "sensors"), dave, user(t, "mon"), user(t, "gw")},
		Rules: []authz.Rule{
			{Subjects: authz.Subjects{Groups: []string{"sensors"}}, Topics: []string{"sensors/%u/#"}, Actions: pubSub, Effect: authz.EffectAllow},
			rule(authz.EffectAllow, []string{"mon"}, sub, "sensors/#"),
			rule(authz.EffectDeny, []string{"mon"}, sub, "sensors/+/secret/#"),
			rule(authz.EffectAllow, []string{"gw"}, pub, "sensors/#"),
		},
	}
}

func TestConnectRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.apply(t, clientsBundle(t))
	for _, tc := range []struct {
		name           string
		username, pass string
		anonymous      bool
		v3, v5         byte // want CONNACK codes
	}{
		{"right password", "alice", "alice-pw", false, 0, 0},
		{"wrong password", "alice", "bob-pw", false, 4, 0x86},
		{"empty password", "alice", "", false, 4, 0x86},
		{"unknown user", "mallory", "mallory-pw", false, 4, 0x86},
		{"disabled user", "dave", "dave-pw", false, 5, 0x87},
		{"anonymous not allowed", "", "", true, 5, 0x87},
	} {
		t.Run(tc.name+"/3.1.1", func(t *testing.T) {
			_, code, err := dialV3(t, e.addr, v3Opts{id: "c3", username: tc.username, password: tc.pass, anonymous: tc.anonymous})
			if code != tc.v3 {
				t.Errorf("got CONNACK return code %d (err %v), want %d", code, err, tc.v3)
			}
			if (err == nil) != (tc.v3 == 0) {
				t.Errorf("got err %v, want failure %v", err, tc.v3 != 0)
			}
		})
		t.Run(tc.name+"/5.0", func(t *testing.T) {
			_, ack, err := dialV5(t, e.addr, v5Opts{id: "c5", username: tc.username, password: tc.pass, anonymous: tc.anonymous})
			if ack == nil {
				t.Fatalf("got no CONNACK (err %v), want 0x%02x", err, tc.v5)
			}
			if ack.ReasonCode != tc.v5 {
				t.Errorf("got CONNACK 0x%02x (err %v), want 0x%02x", ack.ReasonCode, err, tc.v5)
			}
		})
	}
	if got, want := e.srv.Stats().AuthFailures, int64(10); got != want {
		t.Errorf("Stats().AuthFailures: got %d, want %d", got, want)
	}
}

func TestPublishDenied(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.apply(t, clientsBundle(t))
	mon := mustV5(t, e.addr, "mon-1", "mon")
	mon.mustSubscribe(t, "sensors/#", 1)

	t.Run("5.0 QoS 1 gets PUBACK 0x87", func(t *testing.T) {
		alice := mustV5(t, e.addr, "alice-1", "alice")
		before := e.srv.Stats().PublishDenied
		if code := alice.publish(t, "sensors/bob/temp", "forged"); code != 0x87 {
			t.Errorf("publish to another sensor's topic: got PUBACK 0x%02x, want 0x87", code)
		}
		if got := e.srv.Stats().PublishDenied; got != before+1 {
			t.Errorf("PublishDenied: got %d, want %d", got, before+1)
		}
		// The refused message would have reached mon before this one.
		alice.mustPublish(t, "sensors/alice/temp", "21")
		mon.expectNext(t, "sensors/alice/temp", "21")
	})
	for _, qos := range []byte{0, 1} {
		t.Run("3.1.1 QoS "+string('0'+qos)+" is dropped and counted", func(t *testing.T) {
			bob := mustV3(t, e.addr, "bob-1", "bob", false)
			before := e.srv.Stats().PublishDenied
			bob.publish(t, "sensors/alice/temp", qos, "forged")
			bob.publish(t, "sensors/bob/temp", 1, "19")
			mon.expectNext(t, "sensors/bob/temp", "19")
			if got := e.srv.Stats().PublishDenied; got != before+1 {
				t.Errorf("PublishDenied: got %d, want %d", got, before+1)
			}
		})
	}
	t.Run("a subscriber that may not publish", func(t *testing.T) {
		if code := mon.publish(t, "sensors/mon/x", "x"); code != 0x87 {
			t.Errorf("mon publishing: got PUBACK 0x%02x, want 0x87", code)
		}
	})
}

func TestSubscribeDenied(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.apply(t, clientsBundle(t))
	for _, filter := range []string{"sensors/bob/#", "sensors/#", "#", "sensors/+/temp", "$SYS/#"} {
		t.Run(filter+"/3.1.1", func(t *testing.T) {
			c := mustV3(t, e.addr, "alice-3", "alice", false)
			if code := c.subscribe(t, filter, 1); code != 0x80 {
				t.Errorf("got SUBACK 0x%02x, want 0x80", code)
			}
		})
		t.Run(filter+"/5.0", func(t *testing.T) {
			c := mustV5(t, e.addr, "alice-5", "alice")
			sa := c.subscribe(t, filter, 1)
			if len(sa.Reasons) != 1 || sa.Reasons[0] != 0x87 {
				t.Errorf("got SUBACK %v, want [0x87]", sa.Reasons)
			}
		})
	}
	t.Run("allowed filter next to a refused one", func(t *testing.T) {
		c := mustV3(t, e.addr, "alice-3", "alice", false)
		if code := c.subscribe(t, "sensors/alice/#", 1); code != 1 {
			t.Errorf("allowed filter: got SUBACK 0x%02x, want 0x01", code)
		}
	})
	t.Run("monitor may not subscribe to the denied sub-tree itself", func(t *testing.T) {
		c := mustV5(t, e.addr, "mon-5", "mon")
		if sa := c.subscribe(t, "sensors/alice/secret/#", 1); sa.Reasons[0] != 0x87 {
			t.Errorf("got SUBACK 0x%02x, want 0x87", sa.Reasons[0])
		}
	})
}

// TestDenyUnderWideSubscription: a deny on a sub-tree holds for messages
// matched by an allowed wider subscription.
func TestDenyUnderWideSubscription(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.apply(t, clientsBundle(t))
	mon5 := mustV5(t, e.addr, "mon-5", "mon")
	mon5.mustSubscribe(t, "sensors/#", 1)
	mon3 := mustV3(t, e.addr, "mon-3", "mon", false)
	mon3.mustSubscribe(t, "sensors/+/#", 1)
	gw := mustV5(t, e.addr, "gw-1", "gw")
	before := e.srv.Stats().DeliveryDenied

	gw.mustPublish(t, "sensors/alice/secret/key", "hunter2")
	gw.mustPublish(t, "sensors/alice/secret", "hunter2")
	gw.mustPublish(t, "sensors/alice/temp", "21")
	mon5.expectNext(t, "sensors/alice/temp", "21")
	mon3.expectNext(t, "sensors/alice/temp", "21")
	if got := e.srv.Stats().DeliveryDenied; got != before+4 {
		t.Errorf("DeliveryDenied: got %d, want %d (2 messages × 2 subscribers)", got, before+4)
	}
}

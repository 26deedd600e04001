package controllers_test

import (
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	mqttv1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
	"github.com/fleetmq/fleetmq/broker/admin"
	"github.com/fleetmq/fleetmq/internal/testkube"
)

// scaleUsers is how many Users TestScaleThousandUsers creates.
const scaleUsers = 1000

// A burst of Users on one Broker coalesces into a handful of compiles and
// pushes, and every User ends up applied on the broker. Not parallel, so
// the time it logs is its own (docs/benchmarks.md records it); this is
// not a timed assertion.
func TestScaleThousandUsers(t *testing.T) {
	if testing.Short() {
		t.Skip("creates 1,000 Users")
	}
	ns := newNamespace(t)
	create(t, newBroker(ns, "fleet"))
	p := startBroker(t, ns, "fleet")
	createReadyPod(t, ns, "fleet", "127.0.0.3", p)
	setReadyReplicas(t, ns, "fleet", 1)
	br := waitBroker(t, ns, "fleet", "Ready before the burst", func(b *mqttv1alpha1.Broker) bool {
		return meta.IsStatusConditionTrue(b.Status.Conditions, mqttv1alpha1.ConditionReady)
	})
	rev0 := br.Status.AuthRevision
	puts0, reloads0 := pushes.count(p.AdminAddr), p.appliedReloads(t)

	start := time.Now()
	testkube.CreateAll(t, k8s, scaleUsers, 8, func(i int) client.Object {
		return newUser(ns, fmt.Sprintf("device-%04d", i), "fleet", "", "devices")
	})
	created := time.Since(start)

	var last admin.Applied
	eventually(t, 120*time.Second, fmt.Sprintf("broker applies all %d users", scaleUsers), func() (bool, string) {
		last = p.auth(t)
		return last.Users == scaleUsers, fmt.Sprintf("%+v", last)
	})
	applied := time.Since(start)
	waitBroker(t, ns, "fleet", "status at the broker's revision", func(b *mqttv1alpha1.Broker) bool {
		return b.Status.AuthRevision == last.Revision && len(b.Status.Pods) == 1 && b.Status.Pods[0].AppliedRevision == last.Revision &&
			meta.IsStatusConditionTrue(b.Status.Conditions, mqttv1alpha1.ConditionAuthSynced)
	})
	if b := authBundle(t, ns, "fleet"); b == nil || len(b.Users) != scaleUsers || b.Revision != last.Revision {
		t.Errorf("auth Secret bundle: %d users at revision %d, want %d at %d", len(b.Users), b.Revision, scaleUsers, last.Revision)
	}
	puts := pushes.count(p.AdminAddr) - puts0
	reloads := p.appliedReloads(t) - reloads0
	revisions := last.Revision - rev0
	if puts >= 50 || reloads >= 50 {
		t.Errorf("%d Users took %d pushes (%d applied reloads); want a handful (< 50)", scaleUsers, puts, reloads)
	}

	// Every User reports Ready once the Broker's status pass catches up.
	var notReady int
	eventually(t, 120*time.Second, "every User Ready", func() (bool, string) {
		var users mqttv1alpha1.UserList
		if err := k8s.List(ctx, &users, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		notReady = 0
		for _, u := range users.Items {
			c := meta.FindStatusCondition(u.Status.Conditions, mqttv1alpha1.ConditionReady)
			if c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != u.Generation || u.Status.AppliedRevision == 0 {
				notReady++
			}
		}
		return len(users.Items) == scaleUsers && notReady == 0, fmt.Sprintf("%d of %d not Ready", notReady, len(users.Items))
	})
	ready := time.Since(start)
	t.Logf("%d Users on one Broker: created in %v; all applied on the broker after %v (%d pushes, %d applied reloads, %d revisions); all Users Ready after %v",
		scaleUsers, created.Round(time.Millisecond), applied.Round(time.Millisecond), puts, reloads, revisions, ready.Round(time.Millisecond))
}

package controllers_test

import (
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	mqttv1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
	"github.com/fleetmq/fleetmq/broker/authz"
	"github.com/fleetmq/fleetmq/internal/resource"
)

// A Broker gets all its children, each controlled by the Broker, and a
// status that says no pod is ready yet.
func TestBrokerChildrenAndStatus(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	b := newBroker(ns, "acme")
	create(t, b)

	children := []client.Object{
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "acme-config"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "acme-admin"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "acme-auth"}},
		&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "acme"}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "acme"}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "acme-headless"}},
		&policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "acme"}},
	}
	get(t, b)
	for _, obj := range children {
		obj.SetNamespace(ns)
		what := fmt.Sprintf("%T %s", obj, obj.GetName())
		eventually(t, waitTimeout, what+" exists", func() (bool, string) {
			err := k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj)
			return err == nil, fmt.Sprint(err)
		})
		owner := metav1.GetControllerOf(obj)
		if owner == nil || owner.UID != b.UID || owner.Kind != "Broker" || owner.APIVersion != mqttv1alpha1.GroupVersion.String() || owner.Name != b.Name {
			t.Errorf("%s: controller owner = %+v, want the Broker %s (uid %s)", what, owner, b.Name, b.UID)
		} else if owner.BlockOwnerDeletion == nil || !*owner.BlockOwnerDeletion {
			t.Errorf("%s: owner reference does not block owner deletion: %+v", what, owner)
		}
		if got := obj.GetLabels()[resource.LabelBroker]; got != b.Name {
			t.Errorf("%s: label %s = %q, want %q", what, resource.LabelBroker, got, b.Name)
		}
	}

	svc := children[4].(*corev1.Service)
	if svc.Spec.ClusterIP == corev1.ClusterIPNone {
		t.Errorf("client Service acme is headless")
	}
	for _, p := range svc.Spec.Ports {
		if p.Port == resource.AdminPort {
			t.Errorf("client Service exposes the admin port: %+v", svc.Spec.Ports)
		}
	}
	if hl := children[5].(*corev1.Service); hl.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("Service acme-headless: clusterIP = %q, want None", hl.Spec.ClusterIP)
	}
	if token := children[1].(*corev1.Secret).Data[resource.AdminTokenKey]; len(token) < 32 {
		t.Errorf("admin token is %d bytes, want a long random token", len(token))
	}

	got := waitBroker(t, ns, "acme", "status for a Broker without pods", func(b *mqttv1alpha1.Broker) bool {
		c := b.Status.Conditions
		return b.Status.ObservedGeneration == b.Generation &&
			hasCond(c, mqttv1alpha1.ConditionAvailable, metav1.ConditionFalse, mqttv1alpha1.ReasonPodsNotReady, b.Generation) &&
			hasCond(c, mqttv1alpha1.ConditionReady, metav1.ConditionFalse, mqttv1alpha1.ReasonPodsNotReady, b.Generation) &&
			hasCond(c, mqttv1alpha1.ConditionAuthSynced, metav1.ConditionFalse, mqttv1alpha1.ReasonNoReadyPods, b.Generation) &&
			b.Status.AuthRevision == 1
	})
	wantEP := mqttv1alpha1.Endpoint{
		Name: "mqtt", Address: "acme." + ns + ".svc:1883", URL: "mqtt://acme." + ns + ".svc:1883",
	}
	if len(got.Status.Endpoints) != 1 || got.Status.Endpoints[0] != wantEP {
		t.Errorf("status.endpoints = %+v, want [%+v]", got.Status.Endpoints, wantEP)
	}
	if got.Status.AuthHash == "" {
		t.Errorf("status.authHash is empty")
	}
	if len(got.Status.Pods) != 0 || got.Status.ReadyReplicas != 0 {
		t.Errorf("status.pods = %+v, readyReplicas = %d; want none (envtest runs no pods)", got.Status.Pods, got.Status.ReadyReplicas)
	}
	bundle := authBundle(t, ns, "acme")
	if bundle == nil || bundle.Revision != 1 || len(bundle.Users) != 0 || len(bundle.Rules) != 0 {
		t.Errorf("auth bundle of an empty Broker = %+v, want revision 1 with no users and rules", bundle)
	}

	// A spec change is observed: the new generation shows in status and
	// every condition, and the ConfigMap follows.
	update(t, b, func(b *mqttv1alpha1.Broker) {
		b.Spec.LogLevel = mqttv1alpha1.LogLevelDebug
		b.Spec.SessionTakeover = "Discard"
		b.Spec.Limits.MaxSubscriptionsPerClient = ptr.To[int32](5)
	})
	gen := b.Generation
	if gen < 2 {
		t.Fatalf("generation after a spec change = %d", gen)
	}
	waitBroker(t, ns, "acme", "observes the new generation", func(b *mqttv1alpha1.Broker) bool {
		c := b.Status.Conditions
		return b.Status.ObservedGeneration == gen &&
			hasCond(c, mqttv1alpha1.ConditionAvailable, metav1.ConditionFalse, mqttv1alpha1.ReasonPodsNotReady, gen) &&
			hasCond(c, mqttv1alpha1.ConditionReady, metav1.ConditionFalse, mqttv1alpha1.ReasonPodsNotReady, gen) &&
			hasCond(c, mqttv1alpha1.ConditionAuthSynced, metav1.ConditionFalse, mqttv1alpha1.ReasonNoReadyPods, gen)
	})
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "acme-config"}}
	eventually(t, waitTimeout, "ConfigMap has the new log level, limit and takeover rule", func() (bool, string) {
		get(t, cm)
		cfg := cm.Data[resource.ConfigFile]
		return strings.Contains(cfg, "level: debug") && strings.Contains(cfg, "maxSubscriptionsPerClient: 5") &&
			strings.Contains(cfg, "sessionTakeover: discard"), cfg
	})
}

// The API server refuses invalid objects with a message a person can act
// on; no controller is involved.
func TestValidation(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	rule := func(mutate func(r *mqttv1alpha1.ACLRule)) *mqttv1alpha1.ACL {
		r := allowUsers([]string{"tenants/acme/#"}, "alice")
		mutate(&r)
		return newACL(ns, "acl-"+randName(), "acme", r)
	}
	tests := []struct {
		name string
		obj  client.Object
		want []string
	}{{
		name: "broker replicas 2",
		obj: func() client.Object {
			b := newBroker(ns, "two")
			b.Spec.Replicas = ptr.To[int32](2)
			return b
		}(),
		want: []string{"spec.replicas", "do not cluster"},
	}, {
		name: "broker unknown session takeover",
		obj: func() client.Object {
			b := newBroker(ns, "steal")
			b.Spec.SessionTakeover = "Steal"
			return b
		}(),
		want: []string{"spec.sessionTakeover", `Unsupported value: "Steal"`, `"Refuse", "Discard"`},
	}, {
		name: "broker subscription quota 0",
		obj: func() client.Object {
			b := newBroker(ns, "nosubs")
			b.Spec.Limits.MaxSubscriptionsPerClient = ptr.To[int32](0)
			return b
		}(),
		want: []string{"spec.limits.maxSubscriptionsPerClient", "should be greater than or equal to 1"},
	}, {
		name: "acl # not last",
		obj:  rule(func(r *mqttv1alpha1.ACLRule) { r.Topics = []string{"a/#/b"} }),
		want: []string{"spec.rules[0].topics[0]", "'#' is allowed only as the whole last level"},
	}, {
		name: "acl + inside a level",
		obj:  rule(func(r *mqttv1alpha1.ACLRule) { r.Topics = []string{"a+/b"} }),
		want: []string{"spec.rules[0].topics[0]", "'+' only as a whole level"},
	}, {
		name: "acl empty subjects",
		obj:  rule(func(r *mqttv1alpha1.ACLRule) { r.Subjects = mqttv1alpha1.ACLSubjects{} }),
		want: []string{"spec.rules[0].subjects", "name at least one user, group or clientID"},
	}, {
		name: "acl unknown action",
		obj:  rule(func(r *mqttv1alpha1.ACLRule) { r.Actions = []mqttv1alpha1.ACLAction{"delete"} }),
		want: []string{"spec.rules[0].actions[0]", `Unsupported value: "delete"`, `"Publish", "Subscribe"`},
	}, {
		name: "acl unknown effect",
		obj:  rule(func(r *mqttv1alpha1.ACLRule) { r.Effect = "maybe" }),
		want: []string{"spec.rules[0].effect", `Unsupported value: "maybe"`},
	}, {
		name: "user username with wildcard",
		obj: func() client.Object {
			u := newUser(ns, "wild", "acme", "")
			u.Spec.Username = "a/+"
			return u
		}(),
		want: []string{"spec.username"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := k8s.Create(ctx, tc.obj)
			if err == nil {
				t.Fatalf("create %s: accepted, want refused mentioning %q", tc.name, tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("create %s: error %q\ndoes not mention %q", tc.name, err, w)
				}
			}
		})
	}

	t.Run("acl valid topic filters accepted", func(t *testing.T) {
		a := rule(func(r *mqttv1alpha1.ACLRule) {
			r.Topics = []string{"#", "+", "sensors/+/temp", "sensors/#", "tenants/%u/%c/+/#", "/leading", "a//b", "$SYS/#"}
		})
		if err := k8s.Create(ctx, a); err != nil {
			t.Fatalf("create ACL with valid filters: %v", err)
		}
	})

	t.Run("user username immutable", func(t *testing.T) {
		u := newUser(ns, "fixed", "acme", "")
		u.Spec.Username = "first"
		create(t, u)
		err := tryUpdate(t, u, func(u *mqttv1alpha1.User) { u.Spec.Username = "second" })
		if err == nil || !strings.Contains(err.Error(), "username is immutable") {
			t.Fatalf("change username: err = %v, want it refused as immutable", err)
		}
		err = tryUpdate(t, u, func(u *mqttv1alpha1.User) { u.Spec.Username = "" })
		if err == nil || !strings.Contains(err.Error(), "username is immutable") {
			t.Fatalf("unset username: err = %v, want it refused as immutable", err)
		}
		// Other fields stay editable.
		update(t, u, func(u *mqttv1alpha1.User) { u.Spec.Groups = []string{"sensors"} })
	})
}

// A User or ACL naming a Broker that does not exist says so; the Broker
// appearing later takes over their status.
func TestBrokerNotFoundThenCreated(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	create(t, newUser(ns, "early", "late", ""))
	create(t, newACL(ns, "early-acl", "late", allowUsers([]string{"x/#"}, "early")))

	u := waitUserReady(t, ns, "early", metav1.ConditionFalse, mqttv1alpha1.ReasonBrokerNotFound)
	if c := u.Status.Conditions[0]; !strings.Contains(c.Message, `"late"`) {
		t.Errorf("BrokerNotFound message %q does not name the Broker", c.Message)
	}
	waitACLReady(t, ns, "early-acl", metav1.ConditionFalse, mqttv1alpha1.ReasonBrokerNotFound)
	// One Warning Event each, not one per pass.
	waitEvents(t, ns, "User", "early", map[string]int{mqttv1alpha1.ReasonBrokerNotFound: 1})
	waitEvents(t, ns, "ACL", "early-acl", map[string]int{mqttv1alpha1.ReasonBrokerNotFound: 1})
	// No credentials are generated for a Broker that does not exist.
	var s corev1.Secret
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: mqttv1alpha1.CredentialsSecretName("early")}, &s); err == nil {
		t.Errorf("credentials Secret generated before the Broker exists")
	}

	create(t, newBroker(ns, "late"))
	// Without pods, included objects wait for one: Pending.
	u = waitUserReady(t, ns, "early", metav1.ConditionFalse, mqttv1alpha1.ReasonPending)
	if want := mqttv1alpha1.CredentialsSecretName("early"); u.Status.SecretName != want || u.Status.Username != "early" {
		t.Errorf("User status: secretName %q username %q, want %s, early", u.Status.SecretName, u.Status.Username, want)
	}
	a := waitACLReady(t, ns, "early-acl", metav1.ConditionFalse, mqttv1alpha1.ReasonPending)
	if a.Status.RuleCount != 1 {
		t.Errorf("ACL ruleCount = %d, want 1", a.Status.RuleCount)
	}
	waitBundle(t, ns, "late", "has user early and the rule", func(b *authz.Bundle) bool {
		return bundleUser(b, "early") != nil && len(b.Rules) == 1
	})
}

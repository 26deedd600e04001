package controllers_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	mqttv1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
	"github.com/fleetmq/fleetmq/broker/authz"
	"github.com/fleetmq/fleetmq/internal/resource"
)

// waitSecret waits for the Secret ns/name to satisfy check.
func waitSecret(t testing.TB, ns, name, what string, check func(s *corev1.Secret) bool) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{}
	eventually(t, waitTimeout, what, func() (bool, string) {
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, s); err != nil {
			return false, err.Error()
		}
		return check(s), fmt.Sprintf("labels %v, keys %d", s.Labels, len(s.Data))
	})
	return s
}

// waitEvent waits for an Event with reason about the object named name.
func waitEvent(t testing.TB, ns, name, reason string) *eventsv1.Event {
	t.Helper()
	var found *eventsv1.Event
	eventually(t, waitTimeout, "Event "+reason+" on "+name, func() (bool, string) {
		var list eventsv1.EventList
		if err := k8s.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		var seen []string
		for i := range list.Items {
			e := &list.Items[i]
			if e.Regarding.Name == name && e.Reason == reason {
				found = e
				return true, ""
			}
			seen = append(seen, e.Regarding.Name+"/"+e.Reason)
		}
		return false, fmt.Sprint(seen)
	})
	return found
}

// bundleVerifies checks that the bundle's user username has password.
func bundleVerifies(username, password string) func(b *authz.Bundle) bool {
	return func(b *authz.Bundle) bool {
		u := bundleUser(b, username)
		if u == nil {
			return false
		}
		ok, _ := authz.VerifyPassword(u.PasswordHash, []byte(password))
		return ok
	}
}

// A pre-existing Secret with the generated name that the User does not own
// is never overwritten: the User says why (condition and Event). Once it
// is gone, the operator generates its own.
func TestUserCredentialsSecretConflict(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	create(t, newBroker(ns, "acme"))
	foreign := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: mqttv1alpha1.CredentialsSecretName("app")},
		Data:       map[string][]byte{"password": []byte("not-yours"), "other": []byte("keep me")},
	}
	create(t, foreign)
	create(t, newUser(ns, "app", "acme", ""))

	u := &mqttv1alpha1.User{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"}}
	eventually(t, waitTimeout, "CredentialsSecretConflict", func() (bool, string) {
		get(t, u)
		c := meta.FindStatusCondition(u.Status.Conditions, mqttv1alpha1.ConditionCredentialsSecret)
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == mqttv1alpha1.ReasonCredentialsSecretConflict, condState(u.Status.Conditions)
	})
	c := meta.FindStatusCondition(u.Status.Conditions, mqttv1alpha1.ConditionCredentialsSecret)
	for _, w := range []string{foreign.Name, "not owned", "spec.passwordSecretRef"} {
		if !strings.Contains(c.Message, w) {
			t.Errorf("conflict message %q does not mention %q", c.Message, w)
		}
	}
	waitEvent(t, ns, "app", mqttv1alpha1.ReasonCredentialsSecretConflict)
	// The foreign password never reaches the broker.
	waitUserReady(t, ns, "app", metav1.ConditionFalse, mqttv1alpha1.ReasonSecretNotFound)
	if bundleUser(authBundle(t, ns, "acme"), "app") != nil {
		t.Errorf("the bundle holds user app with the foreign Secret's password")
	}
	get(t, foreign)
	if string(foreign.Data["password"]) != "not-yours" || string(foreign.Data["other"]) != "keep me" || metav1.GetControllerOf(foreign) != nil {
		t.Fatalf("foreign Secret was changed: data %v, owner %v", foreign.Data, metav1.GetControllerOf(foreign))
	}

	// Unlabelled, it is outside the operator's cache: only the metadata
	// watch sees it go.
	if err := k8s.Delete(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	s := waitSecret(t, ns, foreign.Name, "generated Secret replaces the foreign one", func(s *corev1.Secret) bool {
		return metav1.GetControllerOf(s) != nil
	})
	if string(s.Data["password"]) == "not-yours" {
		t.Errorf("generated Secret kept the foreign password")
	}
	eventually(t, waitTimeout, "CredentialsSecret True", func() (bool, string) {
		get(t, u)
		return meta.IsStatusConditionTrue(u.Status.Conditions, mqttv1alpha1.ConditionCredentialsSecret), condState(u.Status.Conditions)
	})
	waitBundle(t, ns, "acme", "contains app", func(b *authz.Bundle) bool { return bundleUser(b, "app") != nil })
}

// A generated Secret that loses its label gets it back, keeping its
// password; the User stays in the bundle meanwhile.
func TestUserCredentialsSecretLabelRepaired(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	create(t, newBroker(ns, "acme"))
	create(t, newUser(ns, "app", "acme", ""))
	name := mqttv1alpha1.CredentialsSecretName("app")
	s := waitSecret(t, ns, name, "generated", func(s *corev1.Secret) bool { return s.Labels[resource.LabelCredentials] == "true" })
	password := bytes.Clone(s.Data["password"])
	waitBundle(t, ns, "acme", "contains app", func(b *authz.Bundle) bool { return bundleUser(b, "app") != nil })

	waitUserReady(t, ns, "app", metav1.ConditionFalse, mqttv1alpha1.ReasonPending)
	rev := authBundle(t, ns, "acme").Revision
	update(t, s, func(s *corev1.Secret) { delete(s.Labels, resource.LabelCredentials) })
	s = waitSecret(t, ns, name, "label restored", func(s *corev1.Secret) bool { return s.Labels[resource.LabelCredentials] == "true" })
	if !bytes.Equal(s.Data["password"], password) {
		t.Errorf("password changed when the label was restored")
	}
	b := authBundle(t, ns, "acme")
	if b.Revision != rev {
		t.Errorf("auth revision %d after the label came and went, want %d: the bundle changed", b.Revision, rev)
	}
	if u := bundleUser(b, "app"); u == nil {
		t.Errorf("user app left the bundle when its Secret lost the label")
	} else if ok, _ := authz.VerifyPassword(u.PasswordHash, password); !ok {
		t.Errorf("bundle hash of app does not verify its password")
	}
}

// A referenced Secret read whatever its labels: one created later without
// the label is found at once (metadata watch, no polling); one that loses
// its label is relabelled, and a rotation while unlabelled is seen.
func TestUserReferencedSecretUnlabelled(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	create(t, newBroker(ns, "acme"))
	create(t, newUser(ns, "erin", "acme", "erin-pw"))
	waitUserReady(t, ns, "erin", metav1.ConditionFalse, mqttv1alpha1.ReasonSecretNotFound)
	pw := passwordSecret(ns, "erin-pw", "first", false)
	create(t, pw)
	waitBundle(t, ns, "acme", "erin with the first password", bundleVerifies("erin", "first"))
	waitSecret(t, ns, "erin-pw", "labelled", func(s *corev1.Secret) bool { return s.Labels[resource.LabelCredentials] == "true" })

	// Label removed and password rotated in one write.
	update(t, pw, func(s *corev1.Secret) {
		delete(s.Labels, resource.LabelCredentials)
		s.Data["password"] = []byte("second")
	})
	waitBundle(t, ns, "acme", "erin with the second password", bundleVerifies("erin", "second"))
	waitSecret(t, ns, "erin-pw", "relabelled", func(s *corev1.Secret) bool { return s.Labels[resource.LabelCredentials] == "true" })
}

// A TLS Secret without the operator's label (as cert-manager writes it) is
// found.
func TestBrokerTLSSecretUnlabelled(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	create(t, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "acme-tls"},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: []byte("cert"), corev1.TLSPrivateKeyKey: []byte("key")},
	})
	b := newBroker(ns, "acme")
	b.Spec.Listeners.TLS = &mqttv1alpha1.TLSListener{SecretName: "acme-tls"}
	create(t, b)
	waitBroker(t, ns, "acme", "Available not TLSSecretNotFound", func(b *mqttv1alpha1.Broker) bool {
		c := meta.FindStatusCondition(b.Status.Conditions, mqttv1alpha1.ConditionAvailable)
		return c != nil && c.ObservedGeneration == b.Generation && c.Reason == mqttv1alpha1.ReasonPodsNotReady
	})

	// A missing one is reported, and its later creation, unlabelled, is
	// noticed without any other change.
	b2 := newBroker(ns, "beta")
	b2.Spec.Listeners.TLS = &mqttv1alpha1.TLSListener{SecretName: "beta-tls"}
	create(t, b2)
	waitBroker(t, ns, "beta", "TLSSecretNotFound", func(b *mqttv1alpha1.Broker) bool {
		c := meta.FindStatusCondition(b.Status.Conditions, mqttv1alpha1.ConditionAvailable)
		return c != nil && c.Reason == mqttv1alpha1.ReasonTLSSecretNotFound
	})
	create(t, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "beta-tls"},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: []byte("cert"), corev1.TLSPrivateKeyKey: []byte("key")},
	})
	waitBroker(t, ns, "beta", "TLS Secret found", func(b *mqttv1alpha1.Broker) bool {
		c := meta.FindStatusCondition(b.Status.Conditions, mqttv1alpha1.ConditionAvailable)
		return c != nil && c.Reason == mqttv1alpha1.ReasonPodsNotReady
	})
}

// spec.credentialsSecret names and labels the generated Secret, which has
// the service-binding keys; a listener port change reaches it, and a new
// name moves it (same password, old Secret deleted).
func TestUserCredentialsSecretTemplate(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	create(t, newBroker(ns, "acme"))
	u := newUser(ns, "app", "acme", "")
	u.Spec.CredentialsSecret = &mqttv1alpha1.CredentialsSecretTemplate{
		Name:        "app-binding",
		Labels:      map[string]string{"team": "iot"},
		Annotations: map[string]string{"example.com/sync": "true"},
	}
	create(t, u)
	s := waitSecret(t, ns, "app-binding", "templated Secret", func(*corev1.Secret) bool { return true })
	want := map[string]string{
		"type": "mqtt", "provider": "fleetmq", "username": "app", "host": "acme." + ns + ".svc",
		"port": "1883", "uri": "mqtt://acme." + ns + ".svc:1883",
	}
	for k, v := range want {
		if got := string(s.Data[k]); got != v {
			t.Errorf("key %s = %q, want %q", k, got, v)
		}
	}
	if s.Labels["team"] != "iot" || s.Annotations["example.com/sync"] != "true" || s.Labels[resource.LabelCredentials] != "true" {
		t.Errorf("labels %v annotations %v: want team=iot, the credentials label and example.com/sync=true", s.Labels, s.Annotations)
	}
	password := bytes.Clone(s.Data["password"])
	var old corev1.Secret
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: mqttv1alpha1.CredentialsSecretName("app")}, &old); !apierrors.IsNotFound(err) {
		t.Errorf("default-named Secret: err = %v, want NotFound", err)
	}

	br := &mqttv1alpha1.Broker{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "acme"}}
	update(t, br, func(b *mqttv1alpha1.Broker) { b.Spec.Listeners.MQTT.Port = 11883 })
	waitSecret(t, ns, "app-binding", "port follows the listener", func(s *corev1.Secret) bool {
		return string(s.Data["port"]) == "11883" && string(s.Data["uri"]) == "mqtt://acme."+ns+".svc:11883"
	})

	get(t, u)
	update(t, u, func(u *mqttv1alpha1.User) { u.Spec.CredentialsSecret.Name = "app-moved" })
	moved := waitSecret(t, ns, "app-moved", "moved Secret", func(*corev1.Secret) bool { return true })
	if !bytes.Equal(moved.Data["password"], password) {
		t.Errorf("the moved Secret has another password")
	}
	eventually(t, waitTimeout, "old Secret deleted", func() (bool, string) {
		err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app-binding"}, &old)
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	waitUserReady(t, ns, "app", metav1.ConditionFalse, mqttv1alpha1.ReasonPending)
	if u := bundleUser(authBundle(t, ns, "acme"), "app"); u == nil {
		t.Errorf("user app left the bundle after the move")
	} else if ok, _ := authz.VerifyPassword(u.PasswordHash, password); !ok {
		t.Errorf("bundle hash of app does not verify the moved password")
	}
}

package controllers_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	mqttv1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
	"github.com/fleetmq/fleetmq/broker/authz"
	"github.com/fleetmq/fleetmq/internal/resource"
)

// A User without passwordSecretRef gets a generated credentials Secret it
// owns, and its username, with a hash of that password, in the bundle.
func TestUserGeneratedCredentials(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	create(t, newBroker(ns, "acme"))
	u := newUser(ns, "sensor-7", "acme", "", "sensors", "alpha")
	create(t, u)

	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: mqttv1alpha1.CredentialsSecretName("sensor-7")}}
	eventually(t, waitTimeout, "generated Secret", func() (bool, string) {
		err := k8s.Get(ctx, client.ObjectKeyFromObject(s), s)
		return err == nil, fmt.Sprint(err)
	})
	owner := metav1.GetControllerOf(s)
	if owner == nil || owner.Kind != "User" || owner.UID != u.UID {
		t.Errorf("generated Secret's controller = %+v, want User sensor-7 (uid %s)", owner, u.UID)
	}
	want := map[string]string{
		mqttv1alpha1.CredentialsUsernameKey: "sensor-7",
		mqttv1alpha1.CredentialsHostKey:     "acme." + ns + ".svc",
		mqttv1alpha1.CredentialsPortKey:     "1883",
	}
	for k, v := range want {
		if got := string(s.Data[k]); got != v {
			t.Errorf("generated Secret %s = %q, want %q", k, got, v)
		}
	}
	password := s.Data[mqttv1alpha1.CredentialsPasswordKey]
	if len(password) < 24 {
		t.Errorf("generated password is %d bytes, want a strong random one", len(password))
	}
	if s.Labels[resource.LabelCredentials] != "true" {
		t.Errorf("generated Secret lacks %s=true: %v", resource.LabelCredentials, s.Labels)
	}

	bundle := waitBundle(t, ns, "acme", "contains sensor-7", func(b *authz.Bundle) bool { return bundleUser(b, "sensor-7") != nil })
	bu := bundleUser(bundle, "sensor-7")
	if !slices.Equal(bu.Groups, []string{"alpha", "sensors"}) {
		t.Errorf("bundle groups = %v, want [alpha sensors]", bu.Groups)
	}
	if strings.Contains(string(mustMarshal(t, bundle)), string(password)) {
		t.Fatalf("bundle contains the plaintext password")
	}
	if ok, err := authz.VerifyPassword(bu.PasswordHash, password); err != nil || !ok {
		t.Errorf("bundle hash does not verify the generated password: ok=%v err=%v", ok, err)
	}
	if ok, _ := authz.VerifyPassword(bu.PasswordHash, []byte("wrong")); ok {
		t.Errorf("bundle hash verifies a wrong password")
	}

	got := waitUserReady(t, ns, "sensor-7", metav1.ConditionFalse, mqttv1alpha1.ReasonPending)
	if got.Status.Username != "sensor-7" || got.Status.SecretName != s.Name || got.Status.AppliedRevision != 0 {
		t.Errorf("User status = %+v, want username sensor-7, secretName %s, no applied revision", got.Status, s.Name)
	}

	// The password is generated once: reconciles keep it.
	update(t, got, func(u *mqttv1alpha1.User) { u.Spec.Groups = []string{"sensors"} })
	waitBundle(t, ns, "acme", "groups updated", func(b *authz.Bundle) bool {
		u := bundleUser(b, "sensor-7")
		return u != nil && slices.Equal(u.Groups, []string{"sensors"})
	})
	get(t, s)
	if string(s.Data[mqttv1alpha1.CredentialsPasswordKey]) != string(password) {
		t.Errorf("generated password changed on a User update")
	}
	waitUserReady(t, ns, "sensor-7", metav1.ConditionFalse, mqttv1alpha1.ReasonPending)
}

// Two Users claiming one username: the older keeps it.
func TestUsernameConflict(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	create(t, newBroker(ns, "acme"))
	older := newUser(ns, "z-older", "acme", "")
	older.Spec.Username = "shared"
	create(t, older)
	// creationTimestamp has a resolution of one second; let it tick so the
	// younger User is younger by time, not by name (it sorts first by name).
	time.Sleep(time.Until(older.CreationTimestamp.Add(1100 * time.Millisecond)))
	newer := newUser(ns, "a-newer", "acme", "")
	newer.Spec.Username = "shared"
	create(t, newer)
	if !older.CreationTimestamp.Before(&newer.CreationTimestamp) {
		t.Fatalf("creation timestamps %v, %v: not ordered", older.CreationTimestamp, newer.CreationTimestamp)
	}

	nu := waitUserReady(t, ns, "a-newer", metav1.ConditionFalse, mqttv1alpha1.ReasonUsernameConflict)
	if msg := nu.Status.Conditions[0].Message; !strings.Contains(msg, `"z-older"`) {
		t.Errorf("UsernameConflict message %q does not name the holder", msg)
	}
	waitUserReady(t, ns, "z-older", metav1.ConditionFalse, mqttv1alpha1.ReasonPending)

	var olderSecret corev1.Secret
	eventually(t, waitTimeout, "older's Secret", func() (bool, string) {
		err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: mqttv1alpha1.CredentialsSecretName("z-older")}, &olderSecret)
		return err == nil, fmt.Sprint(err)
	})
	b := waitBundle(t, ns, "acme", "has exactly one user shared", func(b *authz.Bundle) bool {
		return slices.Equal(bundleUsernames(b), []string{"shared"})
	})
	if ok, _ := authz.VerifyPassword(bundleUser(b, "shared").PasswordHash, olderSecret.Data[mqttv1alpha1.CredentialsPasswordKey]); !ok {
		t.Errorf("the bundle's user shared does not have the older User's password")
	}

	// The holder goes: the younger one gets the username.
	if err := k8s.Delete(ctx, older); err != nil {
		t.Fatal(err)
	}
	waitUserReady(t, ns, "a-newer", metav1.ConditionFalse, mqttv1alpha1.ReasonPending)
	var newerSecret corev1.Secret
	eventually(t, waitTimeout, "newer's Secret", func() (bool, string) {
		err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: mqttv1alpha1.CredentialsSecretName("a-newer")}, &newerSecret)
		return err == nil, fmt.Sprint(err)
	})
	eventually(t, waitTimeout, "shared has the newer User's password", func() (bool, string) {
		b := authBundle(t, ns, "acme")
		u := bundleUser(b, "shared")
		if u == nil {
			return false, fmt.Sprint(bundleUsernames(b))
		}
		ok, _ := authz.VerifyPassword(u.PasswordHash, newerSecret.Data[mqttv1alpha1.CredentialsPasswordKey])
		return ok, fmt.Sprintf("revision %d", b.Revision)
	})
}

// A rotated password changes the bundle's hash and revision; a missing
// Secret is reported, and creating it fixes the User.
func TestUserPasswordSecret(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	create(t, newBroker(ns, "acme"))
	// Not labelled: the operator labels it so its cache holds it.
	pw := passwordSecret(ns, "bob-pw", "first-password", false)
	create(t, pw)
	create(t, newUser(ns, "bob", "acme", "bob-pw"))

	b1 := waitBundle(t, ns, "acme", "contains bob", func(b *authz.Bundle) bool { return bundleUser(b, "bob") != nil })
	if ok, _ := authz.VerifyPassword(bundleUser(b1, "bob").PasswordHash, []byte("first-password")); !ok {
		t.Fatalf("bob's hash does not verify the Secret's password")
	}
	u := waitUserReady(t, ns, "bob", metav1.ConditionFalse, mqttv1alpha1.ReasonPending)
	if u.Status.SecretName != "bob-pw" {
		t.Errorf("status.secretName = %q, want bob-pw", u.Status.SecretName)
	}
	eventually(t, waitTimeout, "bob-pw labelled for the operator's cache", func() (bool, string) {
		get(t, pw)
		return pw.Labels[resource.LabelCredentials] == "true", fmt.Sprint(pw.Labels)
	})
	br := waitBroker(t, ns, "acme", "status shows the bundle with bob", func(b *mqttv1alpha1.Broker) bool {
		return b.Status.AuthRevision == b1.Revision && b.Status.ObservedGeneration == b.Generation
	})
	hash1, rev1 := br.Status.AuthHash, br.Status.AuthRevision

	update(t, pw, func(s *corev1.Secret) { s.Data["password"] = []byte("second-password") })
	br = waitBroker(t, ns, "acme", "new hash and revision after the rotation", func(b *mqttv1alpha1.Broker) bool {
		return b.Status.AuthHash != hash1 && b.Status.AuthRevision == rev1+1
	})
	b2 := authBundle(t, ns, "acme")
	if b2.Revision != br.Status.AuthRevision {
		t.Errorf("auth Secret revision %d, status.authRevision %d", b2.Revision, br.Status.AuthRevision)
	}
	if ok, _ := authz.VerifyPassword(bundleUser(b2, "bob").PasswordHash, []byte("second-password")); !ok {
		t.Errorf("after rotation bob's hash does not verify the new password")
	}
	if ok, _ := authz.VerifyPassword(bundleUser(b2, "bob").PasswordHash, []byte("first-password")); ok {
		t.Errorf("after rotation bob's hash still verifies the old password")
	}
	// Conditions stay current: still Pending, for the User's generation.
	waitUserReady(t, ns, "bob", metav1.ConditionFalse, mqttv1alpha1.ReasonPending)

	// A Secret that does not exist yet.
	create(t, newUser(ns, "carol", "acme", "carol-pw"))
	c := waitUserReady(t, ns, "carol", metav1.ConditionFalse, mqttv1alpha1.ReasonSecretNotFound)
	if msg := c.Status.Conditions[0].Message; !strings.Contains(msg, `"carol-pw"`) {
		t.Errorf("SecretNotFound message %q does not name the Secret", msg)
	}
	if bundleUser(authBundle(t, ns, "acme"), "carol") != nil {
		t.Errorf("carol is in the bundle without a password")
	}
	// Created labelled, as the docs ask: the operator sees it at once.
	start := time.Now()
	create(t, passwordSecret(ns, "carol-pw", "carols-password", true))
	waitUserReady(t, ns, "carol", metav1.ConditionFalse, mqttv1alpha1.ReasonPending)
	waitBundle(t, ns, "acme", "contains carol", func(b *authz.Bundle) bool { return bundleUser(b, "carol") != nil })
	t.Logf("labelled Secret created later: User fixed after %v", time.Since(start).Round(10*time.Millisecond))

	// A key that is not there.
	wrongKey := newUser(ns, "dora", "acme", "carol-pw")
	wrongKey.Spec.PasswordSecretRef.Key = "nope"
	create(t, wrongKey)
	d := waitUserReady(t, ns, "dora", metav1.ConditionFalse, mqttv1alpha1.ReasonSecretNotFound)
	if msg := d.Status.Conditions[0].Message; !strings.Contains(msg, `"nope"`) {
		t.Errorf("missing-key message %q does not name the key", msg)
	}
}

// Deleting a User takes it out of the bundle, in a new revision.
func TestUserDeleted(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	create(t, newBroker(ns, "acme"))
	create(t, newUser(ns, "keep", "acme", ""))
	gone := newUser(ns, "gone", "acme", "")
	create(t, gone)
	b := waitBundle(t, ns, "acme", "has keep and gone", func(b *authz.Bundle) bool {
		return slices.Equal(bundleUsernames(b), []string{"gone", "keep"})
	})
	if err := k8s.Delete(ctx, gone); err != nil {
		t.Fatal(err)
	}
	after := waitBundle(t, ns, "acme", "only keep left", func(b *authz.Bundle) bool {
		return slices.Equal(bundleUsernames(b), []string{"keep"})
	})
	if after.Revision <= b.Revision {
		t.Errorf("revision after delete = %d, want > %d", after.Revision, b.Revision)
	}
	waitBroker(t, ns, "acme", "status at the new revision", func(br *mqttv1alpha1.Broker) bool {
		return br.Status.AuthRevision == after.Revision
	})
	waitUserReady(t, ns, "keep", metav1.ConditionFalse, mqttv1alpha1.ReasonPending)
}

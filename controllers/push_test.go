package controllers_test

import (
	"fmt"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	mqttv1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
	"github.com/fleetmq/fleetmq/broker/authz"
)

// The operator's bundle reaches a real fleetmq-broker: at start through the
// auth Secret's file, then live over the admin API; statuses follow what the
// broker reports, and MQTT clients feel the rules.
func TestPushToRealBroker(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	create(t, newBroker(ns, "acme"))
	create(t, newUser(ns, "alice", "acme", ""))
	create(t, newACL(ns, "alice-own", "acme", allowUsers([]string{"tenants/acme/%u/#"}, "alice")))
	waitBundle(t, ns, "acme", "has alice and her rule", func(b *authz.Bundle) bool {
		return bundleUser(b, "alice") != nil && len(b.Rules) == 1
	})

	p := startBroker(t, ns, "acme")
	pod := createReadyPod(t, ns, "acme", "127.0.0.2", p)

	// The pod is ready but the StatefulSet (no controller in envtest) says
	// 0 ready replicas: the bundle is in force, the Broker not Available.
	br := waitBroker(t, ns, "acme", "AuthSynced, not Available", func(b *mqttv1alpha1.Broker) bool {
		c, g := b.Status.Conditions, b.Generation
		return b.Status.ObservedGeneration == g &&
			hasCond(c, mqttv1alpha1.ConditionAuthSynced, metav1.ConditionTrue, mqttv1alpha1.ReasonAuthSynced, g) &&
			hasCond(c, mqttv1alpha1.ConditionAvailable, metav1.ConditionFalse, mqttv1alpha1.ReasonPodsNotReady, g) &&
			hasCond(c, mqttv1alpha1.ConditionReady, metav1.ConditionFalse, mqttv1alpha1.ReasonPodsNotReady, g) &&
			len(b.Status.Pods) == 1 && b.Status.Pods[0].AppliedRevision == b.Status.AuthRevision
	})
	rev := br.Status.AuthRevision
	if ps := br.Status.Pods[0]; ps.Name != pod.Name || !ps.Ready || ps.LastError != "" {
		t.Errorf("status.pods[0] = %+v, want %s ready without error", ps, pod.Name)
	}
	if a := p.auth(t); a.Revision != rev || a.Hash != br.Status.AuthHash || a.Users != 1 || a.Rules != 1 {
		t.Errorf("broker GET /v1/auth = %+v, want revision %d hash %s with 1 user and 1 rule", a, rev, br.Status.AuthHash)
	}

	setReadyReplicas(t, ns, "acme", 1)
	br = waitBroker(t, ns, "acme", "Ready", func(b *mqttv1alpha1.Broker) bool {
		c, g := b.Status.Conditions, b.Generation
		return b.Status.ObservedGeneration == g && b.Status.ReadyReplicas == 1 &&
			hasCond(c, mqttv1alpha1.ConditionAvailable, metav1.ConditionTrue, mqttv1alpha1.ReasonPodsReady, g) &&
			hasCond(c, mqttv1alpha1.ConditionAuthSynced, metav1.ConditionTrue, mqttv1alpha1.ReasonAuthSynced, g) &&
			hasCond(c, mqttv1alpha1.ConditionReady, metav1.ConditionTrue, mqttv1alpha1.ReasonReconciled, g)
	})
	if br.Status.AuthRevision != rev {
		t.Errorf("authRevision moved from %d to %d without a change", rev, br.Status.AuthRevision)
	}
	// appliedRevision is the first revision holding the object as it is,
	// so at most the Broker's.
	u := waitUserReady(t, ns, "alice", metav1.ConditionTrue, mqttv1alpha1.ReasonSynced)
	uRev := u.Status.AppliedRevision
	if uRev < 1 || uRev > rev {
		t.Errorf("User alice appliedRevision = %d, want 1..%d", uRev, rev)
	}
	a := waitACLReady(t, ns, "alice-own", metav1.ConditionTrue, mqttv1alpha1.ReasonSynced)
	if a.Status.AppliedRevision < 1 || a.Status.AppliedRevision > rev || a.Status.RuleCount != 1 {
		t.Errorf("ACL status appliedRevision %d ruleCount %d, want 1..%d, 1", a.Status.AppliedRevision, a.Status.RuleCount, rev)
	}

	// MQTT with the generated credentials.
	var creds corev1.Secret
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: mqttv1alpha1.CredentialsSecretName("alice")}, &creds); err != nil {
		t.Fatal(err)
	}
	username := string(creds.Data[mqttv1alpha1.CredentialsUsernameKey])
	password := string(creds.Data[mqttv1alpha1.CredentialsPasswordKey])
	if err := mqttConnectErr(p.MQTTAddr, username, "not-"+password); err == nil {
		t.Errorf("CONNECT with a wrong password accepted")
	}
	c := mqttConnect(t, p.MQTTAddr, username, password)
	if got := subscribeCode(t, c, "tenants/acme/alice/#"); got != 0 {
		t.Errorf("SUBSCRIBE tenants/acme/alice/#: code %#x, want granted (0)", got)
	}
	if got := subscribeCode(t, c, "extra/#"); got != 0x80 {
		t.Errorf("SUBSCRIBE extra/# before the ACL allows it: code %#x, want refused (0x80)", got)
	}

	// Editing the ACL pushes a new revision live.
	putsBefore, reloadsBefore := pushes.count(p.AdminAddr), p.appliedReloads(t)
	acl := &mqttv1alpha1.ACL{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "alice-own"}}
	update(t, acl, func(a *mqttv1alpha1.ACL) {
		a.Spec.Rules[0].Topics = append(a.Spec.Rules[0].Topics, "extra/#")
	})
	eventually(t, waitTimeout, "broker applies the new revision", func() (bool, string) {
		a := p.auth(t)
		return a.Revision == rev+1, fmt.Sprintf("%+v", a)
	})
	if got := p.auth(t); got.Source != "api" {
		t.Errorf("revision %d came from %q, want a push (api)", got.Revision, got.Source)
	}
	if n := pushes.count(p.AdminAddr) - putsBefore; n < 1 {
		t.Errorf("no PUT /v1/auth counted for the ACL edit")
	}
	if n := p.appliedReloads(t) - reloadsBefore; n != 1 {
		t.Errorf("fleetmq_auth_reloads_total{result=applied} grew by %d, want 1", n)
	}
	waitBroker(t, ns, "acme", "Ready at the new revision", func(b *mqttv1alpha1.Broker) bool {
		c, g := b.Status.Conditions, b.Generation
		return b.Status.AuthRevision == rev+1 && len(b.Status.Pods) == 1 && b.Status.Pods[0].AppliedRevision == rev+1 &&
			hasCond(c, mqttv1alpha1.ConditionAuthSynced, metav1.ConditionTrue, mqttv1alpha1.ReasonAuthSynced, g) &&
			hasCond(c, mqttv1alpha1.ConditionReady, metav1.ConditionTrue, mqttv1alpha1.ReasonReconciled, g)
	})
	a = waitACLReady(t, ns, "alice-own", metav1.ConditionTrue, mqttv1alpha1.ReasonSynced)
	if a.Generation != 2 || a.Status.AppliedRevision != rev+1 {
		t.Errorf("ACL generation %d appliedRevision %d, want 2, %d", a.Generation, a.Status.AppliedRevision, rev+1)
	}
	// alice did not change: her status stays as it was (no write per
	// revision for objects the edit did not touch).
	get(t, u)
	if u.Status.AppliedRevision != uRev || !meta.IsStatusConditionTrue(u.Status.Conditions, mqttv1alpha1.ConditionReady) {
		t.Errorf("alice after an unrelated ACL edit: appliedRevision %d, %s; want %d and Ready", u.Status.AppliedRevision, condState(u.Status.Conditions), uRev)
	}

	// The live client now may subscribe to what the new rule allows.
	if got := subscribeCode(t, c, "extra/#"); got != 0 {
		t.Errorf("SUBSCRIBE extra/# after the ACL edit: code %#x, want granted (0)", got)
	}
	c.Disconnect(100)
	if err := mqttConnectErr(p.MQTTAddr, username, password+"x"); err == nil {
		t.Errorf("CONNECT with a wrong password accepted after the reload")
	}

	// Deleting the User revokes it on the broker.
	if err := k8s.Delete(ctx, u); err != nil {
		t.Fatal(err)
	}
	eventually(t, waitTimeout, "broker has no users", func() (bool, string) {
		a := p.auth(t)
		return a.Users == 0 && a.Revision == rev+2, fmt.Sprintf("%+v", a)
	})
	if err := mqttConnectErr(p.MQTTAddr, username, password); err == nil {
		t.Errorf("CONNECT of a deleted User accepted")
	}
}

func mqttOptions(addr, username, password string) *mqtt.ClientOptions {
	return mqtt.NewClientOptions().
		AddBroker("tcp://" + addr).
		SetClientID("envtest-" + randName()).
		SetUsername(username).SetPassword(password).
		SetProtocolVersion(4).
		SetConnectTimeout(5 * time.Second).
		SetAutoReconnect(false).
		SetConnectRetry(false)
}

// mqttConnectErr connects and disconnects, returning CONNECT's error.
func mqttConnectErr(addr, username, password string) error {
	c := mqtt.NewClient(mqttOptions(addr, username, password))
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return fmt.Errorf("CONNECT: no answer in 10s")
	}
	if err := tok.Error(); err != nil {
		return err
	}
	c.Disconnect(100)
	return nil
}

func mqttConnect(t testing.TB, addr, username, password string) mqtt.Client {
	t.Helper()
	c := mqtt.NewClient(mqttOptions(addr, username, password))
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		t.Fatalf("CONNECT as %s: no answer in 10s", username)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("CONNECT as %s with the generated password: %v", username, err)
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// subscribeCode subscribes at QoS 0 and returns the SUBACK return code.
func subscribeCode(t testing.TB, c mqtt.Client, filter string) byte {
	t.Helper()
	tok := c.Subscribe(filter, 0, nil)
	if !tok.WaitTimeout(10 * time.Second) {
		t.Fatalf("SUBSCRIBE %s: no SUBACK in 10s", filter)
	}
	st, ok := tok.(*mqtt.SubscribeToken)
	if !ok {
		t.Fatalf("SUBSCRIBE token is %T", tok)
	}
	code, ok := st.Result()[filter]
	if !ok {
		t.Fatalf("SUBACK has no code for %s: %v (err %v)", filter, st.Result(), tok.Error())
	}
	return code
}

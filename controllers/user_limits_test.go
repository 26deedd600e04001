package controllers_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	mqttv1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
	"github.com/fleetmq/fleetmq/broker/authz"
)

func int32p(v int32) *int32 { return &v }

// TestUserLimits: a User's spec.limits reach its entry in the stored
// bundle, follow edits and go with them; a real broker the bundle is
// pushed to enforces maxConnections.
func TestUserLimits(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	create(t, newBroker(ns, "acme"))
	u := newUser(ns, "meter", "acme", "")
	u.Spec.Limits = &mqttv1alpha1.UserLimits{MaxConnections: int32p(1), MaxSubscriptionsPerClient: int32p(20),
		PublishRate: &mqttv1alpha1.PublishRate{MessagesPerSecond: 5, Burst: int32p(50)}}
	create(t, u)

	want := &authz.UserLimits{MaxConnections: 1, MaxSubscriptionsPerClient: 20, PublishRate: &authz.PublishRate{MessagesPerSecond: 5, Burst: 50}}
	waitBundle(t, ns, "acme", "meter with its limits", func(b *authz.Bundle) bool {
		bu := bundleUser(b, "meter")
		return bu != nil && reflect.DeepEqual(bu.Limits, want)
	})

	p := startBroker(t, ns, "acme")
	createReadyPod(t, ns, "acme", "127.0.0.2", p)
	var creds corev1.Secret
	eventually(t, waitTimeout, "generated credentials", func() (bool, string) {
		err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: mqttv1alpha1.CredentialsSecretName("meter")}, &creds)
		return err == nil, fmt.Sprint(err)
	})
	password := string(creds.Data[mqttv1alpha1.CredentialsPasswordKey])
	eventually(t, waitTimeout, "the broker applies the bundle", func() (bool, string) {
		a := p.auth(t)
		return a.Users == 1, fmt.Sprintf("%+v", a)
	})
	mqttConnect(t, p.MQTTAddr, "meter", password)
	err := mqttConnectErr(p.MQTTAddr, "meter", password)
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "unavailable") {
		t.Errorf("second connection of a user with maxConnections 1: %v, want refused as server unavailable (3.1.1 rc 3)", err)
	}

	// Edits reach the bundle; removing the limits removes them there.
	update(t, u, func(u *mqttv1alpha1.User) { u.Spec.Limits.MaxConnections = int32p(2) })
	waitBundle(t, ns, "acme", "maxConnections 2", func(b *authz.Bundle) bool {
		bu := bundleUser(b, "meter")
		return bu != nil && bu.Limits != nil && bu.Limits.MaxConnections == 2
	})
	eventually(t, waitTimeout, "a second connection is admitted after the push", func() (bool, string) {
		err := mqttConnectErr(p.MQTTAddr, "meter", password)
		return err == nil, fmt.Sprint(err)
	})
	update(t, u, func(u *mqttv1alpha1.User) { u.Spec.Limits = nil })
	waitBundle(t, ns, "acme", "meter without limits", func(b *authz.Bundle) bool {
		bu := bundleUser(b, "meter")
		return bu != nil && bu.Limits == nil
	})
}

// TestUserLimitsValidation: the API server refuses limits the broker
// would refuse, with a message naming the field.
func TestUserLimitsValidation(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	for name, tc := range map[string]struct {
		limits *mqttv1alpha1.UserLimits
		field  string
	}{
		"zero-connections": {&mqttv1alpha1.UserLimits{MaxConnections: int32p(0)}, "spec.limits.maxConnections"},
		"zero-rate":        {&mqttv1alpha1.UserLimits{PublishRate: &mqttv1alpha1.PublishRate{MessagesPerSecond: 0}}, "spec.limits.publishRate.messagesPerSecond"},
		"negative-burst":   {&mqttv1alpha1.UserLimits{PublishRate: &mqttv1alpha1.PublishRate{MessagesPerSecond: 1, Burst: int32p(-1)}}, "spec.limits.publishRate.burst"},
		"empty":            {&mqttv1alpha1.UserLimits{}, "spec.limits"},
	} {
		u := newUser(ns, name, "acme", "")
		u.Spec.Limits = tc.limits
		err := k8s.Create(ctx, u)
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: create: %v, want refused naming %s", name, err, tc.field)
		}
	}
}

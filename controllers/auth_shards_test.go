package controllers_test

import (
	"encoding/json"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	mqttv1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
	"github.com/fleetmq/fleetmq/broker/authz"
	"github.com/fleetmq/fleetmq/internal/resource"
	"github.com/fleetmq/fleetmq/internal/testkube"
)

// shardUsers Users of shardGroups random groups each make a bundle of
// about 1.6 MB of gzip (group names of 112 random hex digits), so two
// shards.
const (
	shardUsers  = 400
	shardGroups = 64
)

// A bundle past one Secret's size is written as gzip shards named by the
// manifest; a real broker started from those files (as the projected
// volume lays them out) loads every user; when the bundle shrinks, the
// shard no manifest names is deleted.
//
// Not parallel: 400 Users of 2.6 MB in all would slow the operator for
// every other test, so it runs alone.
func TestShardedAuthSecrets(t *testing.T) {
	ns := newNamespace(t)
	create(t, newBroker(ns, "big"))
	createGroupedUsers(t, ns, "big", shardUsers, shardGroups)
	var b *authz.Bundle
	eventually(t, 4*waitTimeout, "the bundle has every user", func() (bool, string) {
		b = authBundle(t, ns, "big")
		if b == nil {
			return false, "no bundle yet"
		}
		return len(b.Users) == shardUsers, fmt.Sprintf("revision %d with %d users", b.Revision, len(b.Users))
	})
	m := authManifest(t, ns, "big")
	if len(m.Shards) < 2 {
		t.Fatalf("bundle of %d users in %d shard(s); the test needs several", shardUsers, len(m.Shards))
	}
	if m.Revision != b.Revision {
		t.Errorf("manifest revision %d, bundle %d", m.Revision, b.Revision)
	}
	for i, sh := range m.Shards {
		var s corev1.Secret
		get(t, secretObj(ns, sh.Secret, &s))
		if want := fmt.Sprintf("big-auth-%d", i); sh.Secret != want || s.Labels[resource.LabelAuthShard] != resource.AuthShardBundle || len(s.OwnerReferences) != 1 {
			t.Errorf("shard %d: Secret %s labels %v owners %d, want %s labelled as a bundle shard, owned by the Broker", i, sh.Secret, s.Labels, len(s.OwnerReferences), want)
		}
	}

	p := startBroker(t, ns, "big")
	if a := p.auth(t); a.Users != shardUsers || a.Revision != b.Revision || a.Source != "file" {
		t.Errorf("broker started from the shard files holds %+v, want revision %d with %d users from the file", a, b.Revision, shardUsers)
	}

	// Shrink to one shard: the second is pruned.
	for i := 50; i < shardUsers; i++ {
		if err := k8s.Delete(ctx, &mqttv1alpha1.User{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("grouped-%04d", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	waitBundle(t, ns, "big", "down to 50 users", func(b *authz.Bundle) bool { return len(b.Users) == 50 })
	eventually(t, waitTimeout, "the unused shard Secret deleted", func() (bool, string) {
		err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "big-auth-1"}, &corev1.Secret{})
		return apierrors.IsNotFound(err), fmt.Sprintf("get big-auth-1: %v", err)
	})
	if m := authManifest(t, ns, "big"); len(m.Shards) != 1 {
		t.Errorf("manifest names %d shards for 50 users, want 1", len(m.Shards))
	}
	var state corev1.SecretList
	eventually(t, waitTimeout, "only the current state's shards kept", func() (bool, string) {
		if err := k8s.List(ctx, &state, client.InNamespace(ns), client.MatchingLabels{resource.LabelAuthShard: resource.AuthShardState}); err != nil {
			return false, err.Error()
		}
		var auth corev1.Secret
		get(t, secretObj(ns, "big-auth", &auth))
		var sm authz.Manifest
		if err := json.Unmarshal(auth.Data[resource.AuthStateManifestKey], &sm); err != nil {
			return false, err.Error()
		}
		return len(state.Items) == len(sm.Shards), fmt.Sprintf("%d state shard Secrets, manifest names %d", len(state.Items), len(sm.Shards))
	})
}

// An auth Secret in the layout of earlier releases (bundle.json and
// state.json, applied by the operator's field manager) is upgraded: the
// revision sequence goes on from its state, and the old keys are gone.
func TestAuthSecretUpgrade(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	br := newBroker(ns, "old")
	// Written before the Broker exists, so the operator's first pass finds
	// it; the owner reference is added by that pass's apply.
	legacy := resource.AuthSecret(br, nil, nil) // the name and labels the old release used
	legacy.Data = map[string][]byte{
		resource.AuthFile:     []byte(`{"apiVersion":"authz.fleetmq.io/v1","revision":41,"users":[],"rules":[]}`),
		resource.AuthStateKey: []byte(`{"revision":41,"hash":"from-the-old-release"}`),
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(legacy)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: m}
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	if err := k8s.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(resource.FieldManager), client.ForceOwnership); err != nil {
		t.Fatalf("apply the old layout: %v", err)
	}
	create(t, br)
	create(t, newUser(ns, "alice", "old", ""))
	b := waitBundle(t, ns, "old", "alice in a sharded bundle", func(b *authz.Bundle) bool { return bundleUser(b, "alice") != nil })
	if b.Revision <= 41 {
		t.Errorf("revision %d after the upgrade, want the sequence to go on above 41", b.Revision)
	}
	eventually(t, waitTimeout, "the old keys dropped", func() (bool, string) {
		var s corev1.Secret
		get(t, secretObj(ns, "old-auth", &s))
		_, b1 := s.Data[resource.AuthFile]
		_, s1 := s.Data[resource.AuthStateKey]
		return !b1 && !s1, fmt.Sprintf("keys: %v", keysOf(s.Data))
	})
}

// createGroupedUsers creates n Users "grouped-NNNN" of broker, each in
// groups random groups, from 8 goroutines.
func createGroupedUsers(t *testing.T, ns, broker string, n, groups int) {
	t.Helper()
	testkube.CreateAll(t, k8s, n, 8, func(i int) client.Object {
		u := newUser(ns, fmt.Sprintf("grouped-%04d", i), broker, "")
		u.Spec.Groups = testkube.RandomGroups(groups)
		return u
	})
}

// authManifest is the bundle manifest in the Broker's auth Secret.
func authManifest(t testing.TB, ns, broker string) *authz.Manifest {
	t.Helper()
	var s corev1.Secret
	get(t, secretObj(ns, broker+"-auth", &s))
	m, err := authz.ParseManifest(s.Data[resource.AuthManifestKey])
	if err != nil {
		t.Fatalf("auth Secret %s-auth: %v", broker, err)
	}
	return m
}

func secretObj(ns, name string, s *corev1.Secret) *corev1.Secret {
	s.Namespace, s.Name = ns, name
	return s
}

func keysOf(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

package e2e_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	mqttv1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
	"github.com/fleetmq/fleetmq/broker/admin"
	"github.com/fleetmq/fleetmq/broker/authz"
	"github.com/fleetmq/fleetmq/internal/resource"
	"github.com/fleetmq/fleetmq/internal/testkube"
)

// readPodBundle reads the bundle a pod's auth volume holds: the manifest
// at path and the shards beside it, checked as the broker checks them.
func readPodBundle(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, err := authz.ParseManifest(data)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	return m.Assemble(func(file string) ([]byte, error) { return os.ReadFile(filepath.Join(dir, file)) })
}

// shardedUsers and shardedGroups size TestShardedRestartWithoutOperator's
// bundle past one shard (1 MB of gzip): random group names barely
// compress, so 400 users of 64 groups of 112 hex digits make about 1.6 MB.
const (
	shardedUsers  = 400
	shardedGroups = 64
)

// TestShardedRestartWithoutOperator: a Broker whose bundle spans several
// shard Secrets; with the operator stopped, the broker process is killed
// and the kubelet restarts it: it comes back Ready from the projected
// shards alone, at the same revision, and the users it holds log in.
func TestShardedRestartWithoutOperator(t *testing.T) {
	tn := newTenant(t, "sharded-"+randName())
	createUsers(t, tn, shardedUsers, shardedGroups)
	want := shardedUsers + 1
	var applied admin.Applied
	eventually(t, 4*waitTimeout, fmt.Sprintf("the broker holds all %d users", want), func() (bool, string) {
		applied = tn.admin.auth(t)
		return applied.Users == want, fmt.Sprintf("%+v", applied)
	})
	var manifest authz.Manifest
	var auth corev1.Secret
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: tn.ns, Name: tn.broker + "-auth"}, &auth); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(auth.Data[resource.AuthManifestKey], &manifest); err != nil {
		t.Fatal(err)
	}
	if len(manifest.Shards) < 2 {
		t.Fatalf("the bundle of %d users is in %d shard(s); the test needs several", want, len(manifest.Shards))
	}
	// The kubelet has projected that revision into the pod.
	path := filepath.Join(podRoot(t, tn), resource.AuthDir, resource.AuthManifestKey)
	eventually(t, waitTimeout, "the pod's auth volume at the broker's revision", func() (bool, string) {
		data, err := readPodBundle(path)
		if err != nil {
			return false, err.Error()
		}
		b, err := authz.Parse(data)
		if err != nil {
			return false, err.Error()
		}
		return b.Revision == applied.Revision && len(b.Users) == want, fmt.Sprintf("revision %d with %d users", b.Revision, len(b.Users))
	})

	if err := op.stop(); err != nil {
		t.Fatalf("stop the operator: %v", err)
	}
	t.Cleanup(func() {
		if err := op.start(); err != nil {
			t.Errorf("start the operator again: %v", err)
		}
	})
	old, _ := pods.Pod(tn.ns, tn.pod)
	if err := pods.Kill(tn.ns, tn.pod); err != nil {
		t.Fatal(err)
	}
	eventually(t, waitTimeout, "the broker back, Ready, without the operator", func() (bool, string) {
		now, ok := pods.Pod(tn.ns, tn.pod)
		if !ok || now.PID == old.PID {
			return false, "not restarted yet"
		}
		a, err := tn.admin.tryGet("/readyz")
		return err == nil, fmt.Sprintf("readyz: %s %v", a, err)
	})
	if a := tn.admin.auth(t); a.Revision != applied.Revision || a.Hash != applied.Hash || a.Users != want || a.Source != "file" {
		t.Errorf("restarted broker holds %+v, want revision %d hash %s with %d users from the shards (file)", a, applied.Revision, applied.Hash, want)
	}
	var creds corev1.Secret
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: tn.ns, Name: mqttv1alpha1.CredentialsSecretName("fleet-0007")}, &creds); err != nil {
		t.Fatal(err)
	}
	mustV5(t, tn.mqttAddr, string(creds.Data[mqttv1alpha1.CredentialsUsernameKey]), string(creds.Data[mqttv1alpha1.CredentialsPasswordKey]))
}

// createUsers creates n Users "fleet-NNNN" on tn's Broker, each in groups
// random groups, from 8 goroutines.
func createUsers(t *testing.T, tn *tenant, n, groups int) {
	t.Helper()
	testkube.CreateAll(t, k8s, n, 8, func(i int) client.Object {
		return &mqttv1alpha1.User{
			ObjectMeta: metav1.ObjectMeta{Namespace: tn.ns, Name: fmt.Sprintf("fleet-%04d", i)},
			Spec: mqttv1alpha1.UserSpec{
				BrokerRef: mqttv1alpha1.BrokerReference{Name: tn.broker},
				Groups:    testkube.RandomGroups(groups),
			},
		}
	})
}

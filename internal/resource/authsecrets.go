package resource

import (
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
	"github.com/fleetmq/fleetmq/internal/authsync"
)

// The auth bundle is sharded (docs/architecture.md, "Auth bundle storage"):
// the Secret AuthSecretName holds the manifests, each shard is a Secret of
// its own.
const (
	// AuthManifestKey is the bundle's manifest (authz.Manifest) in the auth
	// Secret, mounted at AuthDir under the same name: the broker's
	// --auth-file.
	AuthManifestKey = "manifest.json"
	// AuthStateManifestKey is the manifest of the operator's state shards,
	// in the auth Secret; never mounted.
	AuthStateManifestKey = "state-manifest.json"
	// AuthShardKey is the key of a shard Secret.
	AuthShardKey = "shard"
	// LabelAuthShard marks shard Secrets, valued AuthShardBundle or
	// AuthShardState, so the operator can find and delete unused ones.
	LabelAuthShard  = "mqtt.fleetmq.io/auth-shard"
	AuthShardBundle = "bundle"
	AuthShardState  = "state"
)

// AuthShardSecretName is bundle shard i of b ("<broker>-auth-<i>").
func AuthShardSecretName(b *v1alpha1.Broker, i int) string {
	return b.Name + "-auth-" + strconv.Itoa(i)
}

// AuthShardFile is the file bundle shard i is mounted as, in AuthDir.
func AuthShardFile(i int) string { return "shard-" + strconv.Itoa(i) }

// AuthStateShardSecretName is state shard i of the state whose content
// hash begins with id ("<broker>-auth-state-<id>-<i>"). New content gets
// new names, so a new state is written beside the old one and the
// manifest switches over in one write: a crash half-way, or a cache that
// has seen only part of the writes, still finds the old state whole.
func AuthStateShardSecretName(b *v1alpha1.Broker, id string, i int) string {
	return b.Name + "-auth-state-" + id + "-" + strconv.Itoa(i)
}

// AuthSecret holds the manifests of the bundle shards (AuthManifestKey,
// mounted at AuthDir and watched by the broker) and of the state shards
// (AuthStateManifestKey, never mounted). Its content is deliberately in no
// pod-template hash: the broker reloads the bundle live, so auth changes
// never roll pods.
func AuthSecret(b *v1alpha1.Broker, manifest, stateManifest []byte) *corev1.Secret {
	return authSecret(b, AuthSecretName(b), nil, map[string][]byte{
		AuthManifestKey:      manifest,
		AuthStateManifestKey: stateManifest,
	})
}

// AuthShardSecret holds one shard, of the bundle (kind AuthShardBundle)
// or of the operator's state (AuthShardState).
func AuthShardSecret(b *v1alpha1.Broker, name, kind string, shard []byte) *corev1.Secret {
	return authSecret(b, name, map[string]string{LabelAuthShard: kind}, map[string][]byte{AuthShardKey: shard})
}

// AuthShardSelector selects b's shard Secrets of kind.
func AuthShardSelector(b *v1alpha1.Broker, kind string) map[string]string {
	return map[string]string{LabelBroker: b.Name, LabelAuthShard: kind}
}

func authSecret(b *v1alpha1.Broker, name string, labels map[string]string, data map[string][]byte) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: b.Namespace,
			Labels:    merge(labels, secretLabels(b)),
		},
		Type: corev1.SecretTypeOpaque,
		Data: data,
	}
}

// authVolume projects the manifest and authsync.ShardSlots optional shard slots
// into one directory. A slot whose Secret does not exist is left out, so
// the bundle grows or shrinks without a pod-template change; the state
// shards and the state manifest are never projected.
func authVolume(b *v1alpha1.Broker) corev1.Volume {
	sources := []corev1.VolumeProjection{{Secret: &corev1.SecretProjection{
		LocalObjectReference: corev1.LocalObjectReference{Name: AuthSecretName(b)},
		Items:                []corev1.KeyToPath{{Key: AuthManifestKey, Path: AuthManifestKey}},
	}}}
	for i := range authsync.ShardSlots {
		optional := true
		sources = append(sources, corev1.VolumeProjection{Secret: &corev1.SecretProjection{
			LocalObjectReference: corev1.LocalObjectReference{Name: AuthShardSecretName(b, i)},
			Items:                []corev1.KeyToPath{{Key: AuthShardKey, Path: AuthShardFile(i)}},
			Optional:             &optional,
		}})
	}
	return corev1.Volume{Name: VolumeAuth, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: sources}}}
}

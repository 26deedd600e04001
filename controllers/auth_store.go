package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	mqttv1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
	"github.com/fleetmq/fleetmq/broker/authz"
	"github.com/fleetmq/fleetmq/internal/authsync"
	"github.com/fleetmq/fleetmq/internal/resource"
)

// The auth bundle and the operator's state are stored gzip-compressed in
// shard Secrets named by manifests in the auth Secret (docs/architecture.md,
// "Auth bundle storage"). Write order: shards, then the manifests, then
// deletion of shards no manifest names; so a reader following a manifest
// finds its shards, or (bundle shards overwritten in place, while the
// kubelet lags) finds a mismatch it detects and waits out.

// storedAuth is what the auth Secret says is stored.
type storedAuth struct {
	// secret is the auth Secret; nil when it does not exist.
	secret *corev1.Secret
	// bundle is the bundle manifest; nil when absent or unreadable.
	bundle *authz.Manifest
	// stateHash is the SHA-256 (hex) of the state JSON the state manifest
	// names; empty when there is none.
	stateHash string
}

// loadAuthState reads the auth Secret and the operator's state. A state
// that cannot be read only costs re-hashing: prev then starts above the
// stored revision. The layout of earlier releases (bundle.json and
// state.json in the auth Secret itself) is read too, so an upgraded
// operator keeps its revisions and password hashes.
func (r *BrokerReconciler) loadAuthState(ctx context.Context, b *mqttv1alpha1.Broker) (*storedAuth, *authsync.State, error) {
	var s corev1.Secret
	err := r.Get(ctx, types.NamespacedName{Namespace: b.Namespace, Name: resource.AuthSecretName(b)}, &s)
	switch {
	case apierrors.IsNotFound(err):
		return &storedAuth{}, nil, nil
	case err != nil:
		return nil, nil, fmt.Errorf("get auth Secret: %w", err)
	}
	st := &storedAuth{secret: &s}
	if m, err := authz.ParseManifest(s.Data[resource.AuthManifestKey]); err == nil {
		st.bundle = m
	}
	var prev *authsync.State
	switch {
	case len(s.Data[resource.AuthStateManifestKey]) > 0:
		data, m, err := authsync.Unshard(s.Data[resource.AuthStateManifestKey], func(sh authz.Shard) ([]byte, error) {
			return r.shardData(ctx, b.Namespace, sh.Secret)
		})
		if err == nil {
			prev, err = authsync.ParseState(data)
		}
		if err != nil {
			log.FromContext(ctx).Error(err, "Auth state unreadable; recompiling from scratch")
			return st, &authsync.State{Revision: st.revision()}, nil
		}
		st.stateHash = m.Hash
	case len(s.Data[resource.AuthStateKey]) > 0:
		if prev, err = authsync.ParseState(s.Data[resource.AuthStateKey]); err != nil {
			log.FromContext(ctx).Error(err, "Auth state unreadable; recompiling from scratch")
			prev = &authsync.State{Revision: revisionOf(s.Data[resource.AuthFile])}
		}
	}
	return st, prev, nil
}

// revision is the stored bundle's revision, 0 when unknown.
func (st *storedAuth) revision() int64 {
	if st.bundle == nil {
		return 0
	}
	return st.bundle.Revision
}

// shardData reads the shard of the Secret name.
func (r *BrokerReconciler) shardData(ctx context.Context, ns, name string) ([]byte, error) {
	var s corev1.Secret
	if err := r.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &s); err != nil {
		return nil, fmt.Errorf("get shard Secret %s: %w", name, err)
	}
	return s.Data[resource.AuthShardKey], nil
}

// storeAuth writes the bundle of res and state (res.State encoded) unless
// they are what st says is stored already.
func (r *BrokerReconciler) storeAuth(ctx context.Context, b *mqttv1alpha1.Broker, st *storedAuth, res *authsync.Result, state []byte) error {
	stateHash := sha256hex(state)
	legacy := st.secret != nil && (st.secret.Data[resource.AuthFile] != nil || st.secret.Data[resource.AuthStateKey] != nil)
	if st.bundle != nil && st.bundle.Revision == res.Bundle.Revision && st.bundle.Hash == res.State.Hash &&
		st.stateHash == stateHash && !legacy {
		return nil
	}
	bundle, err := authsync.ShardBundle(res.BundleJSON, res.Bundle.Revision, res.State.Hash, func(i int) (string, string) {
		return resource.AuthShardSecretName(b, i), resource.AuthShardFile(i)
	})
	if err != nil {
		return err
	}
	stateShards, err := authsync.ShardState(state, res.State.Revision, func(i int) (string, string) {
		name := resource.AuthStateShardSecretName(b, stateHash[:12], i)
		return name, name
	})
	if err != nil {
		return err
	}
	stateShards.Manifest.Hash = stateHash
	if stateShards.ManifestJSON, err = json.Marshal(stateShards.Manifest); err != nil {
		return fmt.Errorf("encode auth state manifest: %w", err)
	}

	if err := r.writeShards(ctx, b, resource.AuthShardBundle, bundle); err != nil {
		return err
	}
	if err := r.writeShards(ctx, b, resource.AuthShardState, stateShards); err != nil {
		return err
	}
	if err := apply(ctx, r.Client, r.Scheme, b, resource.AuthSecret(b, bundle.ManifestJSON, stateShards.ManifestJSON)); err != nil {
		return err
	}
	return errors.Join(r.pruneShards(ctx, b, resource.AuthShardBundle, bundle), r.pruneShards(ctx, b, resource.AuthShardState, stateShards))
}

// writeShards applies each shard of s whose Secret does not hold it yet.
func (r *BrokerReconciler) writeShards(ctx context.Context, b *mqttv1alpha1.Broker, kind string, s *authsync.Sharded) error {
	for i, sh := range s.Manifest.Shards {
		if cur, err := r.shardData(ctx, b.Namespace, sh.Secret); err == nil && sha256hex(cur) == sh.SHA256 {
			continue
		}
		if err := apply(ctx, r.Client, r.Scheme, b, resource.AuthShardSecret(b, sh.Secret, kind, s.Shards[i])); err != nil {
			return err
		}
	}
	return nil
}

// pruneShards deletes b's shard Secrets of kind that s does not name.
func (r *BrokerReconciler) pruneShards(ctx context.Context, b *mqttv1alpha1.Broker, kind string, s *authsync.Sharded) error {
	var list corev1.SecretList
	if err := r.List(ctx, &list, client.InNamespace(b.Namespace), client.MatchingLabels(resource.AuthShardSelector(b, kind))); err != nil {
		return fmt.Errorf("list %s shard Secrets: %w", kind, err)
	}
	keep := map[string]bool{}
	for _, sh := range s.Manifest.Shards {
		keep[sh.Secret] = true
	}
	var errs []error
	for i := range list.Items {
		if keep[list.Items[i].Name] {
			continue
		}
		if err := r.deleteIfOwned(ctx, b, &list.Items[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func sha256hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

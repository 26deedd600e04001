package controllers

// Reading the Secrets users own. The manager caches only Secrets labelled
// resource.LabelCredentials (memory follows fleetmq's objects, not the
// cluster's), but users own Secrets the operator must read whatever their
// labels: a referenced password Secret, a cert-manager TLS Secret, a
// generated credentials Secret whose label someone removed. So:
//   - getSecret reads the cache first and the API server (uncached) when
//     the cache does not hold the Secret;
//   - a metadata-only watch of every Secret, in a cache of its own with no
//     label filter and no annotations or managedFields kept, re-checks the
//     Users and Brokers that name a Secret when it changes or appears.

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	mqttv1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
	"github.com/fleetmq/fleetmq/internal/authsync"
)

// getSecret reads a Secret from cached (the label-filtered cache) and, when
// it is not there, from api (the API server): a Secret without the label is
// still found. The error is NotFound only when the server has no such
// Secret.
func getSecret(ctx context.Context, cached, api client.Reader, namespace, name string) (*corev1.Secret, error) {
	key := types.NamespacedName{Namespace: namespace, Name: name}
	var s corev1.Secret
	err := cached.Get(ctx, key, &s)
	if apierrors.IsNotFound(err) && api != nil {
		err = api.Get(ctx, key, &s)
	}
	if err != nil {
		return nil, err
	}
	return &s, nil
}

// passwordSecrets reads the password Secret of each User, by name (a
// referenced one whatever its labels). A
// generated credentials Secret the User does not control is left out: its
// password is someone else's, never a User's (the User reconciler reports
// the conflict).
func passwordSecrets(ctx context.Context, cached, api client.Reader, namespace string, users []mqttv1alpha1.User) (map[string]*corev1.Secret, error) {
	secrets := map[string]*corev1.Secret{}
	for i := range users {
		u := &users[i]
		name, _ := authsync.PasswordSecret(u)
		if _, seen := secrets[name]; seen {
			continue
		}
		// A generated Secret not seen yet is looked for in the cache alone:
		// asking the API server for each one not generated yet would cost
		// a request per new User on every pass. Once seen, a cache miss
		// (its label removed, until the User reconciler restores it) is
		// read through, so the user is never dropped meanwhile.
		reader := api
		if u.Spec.PasswordSecretRef == nil && !secretSeen(u, name) {
			reader = nil
		}
		s, err := getSecret(ctx, cached, reader, namespace, name)
		switch {
		case apierrors.IsNotFound(err):
			continue
		case err != nil:
			return nil, fmt.Errorf("get Secret %s: %w", name, err)
		}
		if u.Spec.PasswordSecretRef == nil && !metav1.IsControlledBy(s, u) {
			continue
		}
		secrets[name] = s
	}
	return secrets, nil
}

// secretSeen reports whether u's status says its password Secret name was
// found: it names it and Ready is not SecretNotFound.
func secretSeen(u *mqttv1alpha1.User, name string) bool {
	c := meta.FindStatusCondition(u.Status.Conditions, mqttv1alpha1.ConditionReady)
	return u.Status.SecretName == name && c != nil && c.Reason != mqttv1alpha1.ReasonSecretNotFound
}

// newSecretMetadataCache is a cache of every Secret's metadata in
// namespaces (all when empty), for the watch that re-checks referenced
// Secrets. It keeps no annotations (kubectl's last-applied-configuration
// would carry the data) and no managedFields.
func newSecretMetadataCache(mgr ctrl.Manager, namespaces []string) (cache.Cache, error) {
	opts := cache.Options{
		Scheme: mgr.GetScheme(),
		Mapper: mgr.GetRESTMapper(),
		DefaultTransform: func(in any) (any, error) {
			if m, ok := in.(metav1.Object); ok {
				m.SetManagedFields(nil)
				m.SetAnnotations(nil)
			}
			return in, nil
		},
	}
	if len(namespaces) > 0 {
		opts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range namespaces {
			opts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	c, err := cache.New(mgr.GetConfig(), opts)
	if err != nil {
		return nil, fmt.Errorf("create Secret metadata cache: %w", err)
	}
	if err := mgr.Add(c); err != nil {
		return nil, fmt.Errorf("add Secret metadata cache: %w", err)
	}
	return c, nil
}

// secretMetadataSource watches the metadata of every Secret in c and
// enqueues what mapFn names.
func secretMetadataSource(c cache.Cache, mapFn func(context.Context, client.Object) []reconcile.Request) source.Source {
	obj := &metav1.PartialObjectMetadata{}
	obj.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	return source.Kind(c, obj, handler.TypedEnqueueRequestsFromMapFunc(func(ctx context.Context, o *metav1.PartialObjectMetadata) []reconcile.Request {
		return mapFn(ctx, o)
	}))
}

// secretToUsers maps a Secret to the Users that read their password from
// it or generate it.
func secretToUsers(c client.Reader) func(context.Context, client.Object) []reconcile.Request {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		var users mqttv1alpha1.UserList
		if err := c.List(ctx, &users, client.InNamespace(o.GetNamespace()), client.MatchingFields{indexUserSecret: o.GetName()}); err != nil {
			return nil
		}
		out := make([]reconcile.Request, 0, len(users.Items))
		for _, u := range users.Items {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: u.Namespace, Name: u.Name}})
		}
		return out
	}
}

// secretToAllBrokers maps a Secret to the Brokers of the Users that read
// it and to the Brokers whose TLS listener serves it.
func (r *BrokerReconciler) secretToAllBrokers(ctx context.Context, o client.Object) []reconcile.Request {
	out := r.secretToBrokers(ctx, o)
	var brokers mqttv1alpha1.BrokerList
	if err := r.List(ctx, &brokers, client.InNamespace(o.GetNamespace())); err != nil {
		return out
	}
	for _, b := range brokers.Items {
		if tls := b.Spec.Listeners.TLS; tls != nil && tls.SecretName == o.GetName() {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: b.Namespace, Name: b.Name}})
		}
	}
	return out
}

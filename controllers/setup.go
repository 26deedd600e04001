package controllers

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	mqttv1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
	"github.com/fleetmq/fleetmq/broker/authz"
	"github.com/fleetmq/fleetmq/internal/authsync"
	"github.com/fleetmq/fleetmq/internal/resource"
)

// Config wires the controllers into a manager.
type Config struct {
	// BrokerImage is the default broker image.
	BrokerImage string
	// HashIterations is the PBKDF2 count for password hashes
	// (authz.DefaultIterations when 0).
	HashIterations int
	// Resolver finds pods' admin API addresses (PodIPResolver when nil).
	Resolver PodResolver
	// NewAuthClient builds the admin API client for a token and a
	// Broker's TLS (HTTPS verified against the Broker's CA when nil).
	NewAuthClient func(token string, tls *authsync.TLS) authsync.Client
	// OperatorNamespace is the operator's own namespace, which Brokers'
	// NetworkPolicies admit to the admin port (none are made when empty).
	OperatorNamespace string
	// PushTimeout bounds one push to one pod (3 s when 0).
	PushTimeout time.Duration
	// MaxConcurrentReconciles of the Broker controller (4 when 0): a slow
	// or unreachable broker does not hold up the others.
	MaxConcurrentReconciles int
	// Namespaces the operator watches (all when empty), for the Secret
	// metadata watch, which has a cache of its own.
	Namespaces []string
}

// CacheOptions keeps the operator's memory proportional to fleetmq's
// objects, not the cluster's: of each kind the Broker owns it caches only
// what carries the operator's managed-by label (every child the builders
// render has it), of Secrets only those labelled for it, and no object
// keeps its managedFields. Objects that may lack the label are read
// through the manager's APIReader.
func CacheOptions() cache.Options {
	credentials, _ := labels.NewRequirement(resource.LabelCredentials, selection.Equals, []string{"true"})
	managed, _ := labels.NewRequirement(resource.LabelManagedBy, selection.Equals, []string{resource.FieldManager})
	byManaged := cache.ByObject{Label: labels.NewSelector().Add(*managed)}
	return cache.Options{
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}:                {Label: labels.NewSelector().Add(*credentials)},
			&corev1.Pod{}:                   byManaged,
			&corev1.Service{}:               byManaged,
			&corev1.ConfigMap{}:             byManaged,
			&appsv1.StatefulSet{}:           byManaged,
			&policyv1.PodDisruptionBudget{}: byManaged,
		},
	}
}

// Setup registers the field indexes and the three controllers.
func Setup(ctx context.Context, mgr ctrl.Manager, cfg Config) error {
	if err := setupIndexes(ctx, mgr); err != nil {
		return err
	}
	iterations := cfg.HashIterations
	if iterations == 0 {
		iterations = authz.DefaultIterations
	}
	if cfg.Resolver == nil {
		cfg.Resolver = PodIPResolver{}
	}
	var forgetAuthClient func(serverName string)
	if cfg.NewAuthClient == nil {
		clients := &authsync.TLSClients{}
		cfg.NewAuthClient, forgetAuthClient = clients.Client, clients.Forget
	}
	if cfg.PushTimeout == 0 {
		cfg.PushTimeout = 3 * time.Second
	}
	if cfg.MaxConcurrentReconciles == 0 {
		cfg.MaxConcurrentReconciles = 4
	}
	recorder := mgr.GetEventRecorder(resource.FieldManager)
	secretMeta, err := newSecretMetadataCache(mgr, cfg.Namespaces)
	if err != nil {
		return err
	}

	newAuthClient := cfg.NewAuthClient
	cfg.NewAuthClient = func(token string, tls *authsync.TLS) authsync.Client {
		return instrumentedClient{newAuthClient(token, tls)}
	}
	br := &BrokerReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Scheme: mgr.GetScheme(), Recorder: recorder,
		Options:       resource.Options{DefaultImage: cfg.BrokerImage},
		HashPassword:  func(pw []byte) (string, error) { return authz.HashPassword(pw, iterations) },
		NewAuthClient: cfg.NewAuthClient, Resolver: cfg.Resolver, PushTimeout: cfg.PushTimeout,
		OperatorNamespace: cfg.OperatorNamespace, ForgetAuthClient: forgetAuthClient,
	}
	toBroker := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: brokerRefOf(o)}}}
	})
	err = ctrl.NewControllerManagedBy(mgr).
		For(&mqttv1alpha1.Broker{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}, pausedChanged()))).
		Owns(&appsv1.StatefulSet{}).
		Owns(&corev1.Service{}).
		Owns(&corev1.ConfigMap{}).
		Owns(&corev1.Secret{}).
		Owns(&policyv1.PodDisruptionBudget{}).
		Owns(&networkingv1.NetworkPolicy{}).
		Watches(&mqttv1alpha1.User{}, toBroker, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, markedBrokerNotFound()))).
		Watches(&mqttv1alpha1.ACL{}, toBroker, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, markedBrokerNotFound()))).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(br.secretToBrokers)).
		WatchesRawSource(secretMetadataSource(secretMeta, br.secretToAllBrokers)).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(podToBroker)).
		WithOptions(controller.Options{MaxConcurrentReconciles: cfg.MaxConcurrentReconciles}).
		Complete(br)
	if err != nil {
		return fmt.Errorf("set up Broker controller: %w", err)
	}

	ur := &UserReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Scheme: mgr.GetScheme(), Recorder: recorder}
	err = ctrl.NewControllerManagedBy(mgr).
		For(&mqttv1alpha1.User{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Owns(&corev1.Secret{}).
		WatchesRawSource(secretMetadataSource(secretMeta, secretToUsers(mgr.GetClient()))).
		Watches(&mqttv1alpha1.Broker{}, handler.EnqueueRequestsFromMapFunc(objectsOfBroker(mgr.GetClient(), &mqttv1alpha1.UserList{})),
			builder.WithPredicates(predicate.Or(brokerCreatedOrDeleted(), brokerCredentialsChanged()))).
		Complete(ur)
	if err != nil {
		return fmt.Errorf("set up User controller: %w", err)
	}

	ar := &ACLReconciler{Client: mgr.GetClient(), Recorder: recorder}
	err = ctrl.NewControllerManagedBy(mgr).
		For(&mqttv1alpha1.ACL{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&mqttv1alpha1.Broker{}, handler.EnqueueRequestsFromMapFunc(objectsOfBroker(mgr.GetClient(), &mqttv1alpha1.ACLList{})),
			builder.WithPredicates(brokerCreatedOrDeleted())).
		Complete(ar)
	if err != nil {
		return fmt.Errorf("set up ACL controller: %w", err)
	}
	return nil
}

// Field indexes on Users and ACLs.
const (
	// indexBrokerRef: the Users and ACLs of a Broker.
	indexBrokerRef = "spec.brokerRef.name"
	// indexUserSecret: the Users whose password a Secret holds.
	indexUserSecret = "passwordSecretName"
	// indexSecretController: Secrets by the UID of the User controlling
	// them (the generated credentials Secrets of a User).
	indexSecretController = "userControllerUID"
)

func setupIndexes(ctx context.Context, mgr ctrl.Manager) error {
	idx := mgr.GetFieldIndexer()
	byBroker := func(o client.Object) []string { return []string{brokerRefOf(o)} }
	if err := idx.IndexField(ctx, &mqttv1alpha1.User{}, indexBrokerRef, byBroker); err != nil {
		return fmt.Errorf("index Users by Broker: %w", err)
	}
	if err := idx.IndexField(ctx, &mqttv1alpha1.ACL{}, indexBrokerRef, byBroker); err != nil {
		return fmt.Errorf("index ACLs by Broker: %w", err)
	}
	if err := idx.IndexField(ctx, &mqttv1alpha1.User{}, indexUserSecret, func(o client.Object) []string {
		name, _ := authsync.PasswordSecret(o.(*mqttv1alpha1.User))
		return []string{name}
	}); err != nil {
		return fmt.Errorf("index Users by Secret: %w", err)
	}
	if err := idx.IndexField(ctx, &corev1.Secret{}, indexSecretController, func(o client.Object) []string {
		if ref := metav1.GetControllerOf(o); ref != nil && ref.Kind == "User" && ref.APIVersion == mqttv1alpha1.GroupVersion.String() {
			return []string{string(ref.UID)}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("index Secrets by User: %w", err)
	}
	return nil
}

func brokerRefOf(o client.Object) string {
	switch v := o.(type) {
	case *mqttv1alpha1.User:
		return v.Spec.BrokerRef.Name
	case *mqttv1alpha1.ACL:
		return v.Spec.BrokerRef.Name
	}
	return ""
}

// secretToBrokers maps a password Secret to the Brokers of the Users that
// read it, so a rotation recompiles at once.
func (r *BrokerReconciler) secretToBrokers(ctx context.Context, o client.Object) []reconcile.Request {
	var users mqttv1alpha1.UserList
	if err := r.List(ctx, &users, client.InNamespace(o.GetNamespace()), client.MatchingFields{indexUserSecret: o.GetName()}); err != nil {
		return nil
	}
	seen := map[string]bool{}
	var out []reconcile.Request
	for _, u := range users.Items {
		if !seen[u.Spec.BrokerRef.Name] {
			seen[u.Spec.BrokerRef.Name] = true
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: u.Namespace, Name: u.Spec.BrokerRef.Name}})
		}
	}
	return out
}

// podToBroker maps a broker pod to its Broker: a pod turning Ready gets
// the current bundle pushed.
func podToBroker(_ context.Context, o client.Object) []reconcile.Request {
	name := o.GetLabels()[resource.LabelInstance]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}}}
}

// objectsOfBroker maps a Broker to the Users or ACLs that refer to it.
func objectsOfBroker(c client.Client, list client.ObjectList) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		l := list.DeepCopyObject().(client.ObjectList)
		if err := c.List(ctx, l, client.InNamespace(o.GetNamespace()), client.MatchingFields{indexBrokerRef: o.GetName()}); err != nil {
			return nil
		}
		var out []reconcile.Request
		switch v := l.(type) {
		case *mqttv1alpha1.UserList:
			for _, u := range v.Items {
				out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: u.Namespace, Name: u.Name}})
			}
		case *mqttv1alpha1.ACLList:
			for _, a := range v.Items {
				out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: a.Namespace, Name: a.Name}})
			}
		}
		return out
	}
}

// markedBrokerNotFound passes a User or ACL whose status just says its
// Broker is missing: when that raced the Broker's creation (the User
// reconciler read a stale cache), the Broker reconciler must run again to
// put the truth back.
func markedBrokerNotFound() predicate.Predicate {
	return updatesWhere(func(e event.UpdateEvent) bool {
		s, ok := statusOf(e.ObjectNew)
		if !ok {
			return false
		}
		c := meta.FindStatusCondition(*s.conditions, mqttv1alpha1.ConditionReady)
		return c != nil && c.Reason == mqttv1alpha1.ReasonBrokerNotFound
	})
}

// updatesWhere passes only the updates that pass f.
func updatesWhere(f func(event.UpdateEvent) bool) predicate.Predicate {
	return predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
		UpdateFunc:  f,
	}
}

// brokerCreatedOrDeleted passes only a Broker's appearance and
// disappearance: that is all a User or ACL reconciler cares about.
func brokerCreatedOrDeleted() predicate.Predicate {
	return predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return true },
		DeleteFunc:  func(event.DeleteEvent) bool { return true },
		UpdateFunc:  func(event.UpdateEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

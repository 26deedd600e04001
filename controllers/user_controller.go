package controllers

import (
	"bytes"
	"context"
	"fmt"
	"maps"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	mqttv1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
	"github.com/fleetmq/fleetmq/internal/authsync"
	"github.com/fleetmq/fleetmq/internal/resource"
)

// UserReconciler handles what belongs to a User alone: its generated
// credentials Secret, labelling a referenced Secret so the operator's cache
// sees it rotate, and the BrokerNotFound status. Everything else (the
// bundle, the Ready condition once the Broker exists) is its Broker's work.
type UserReconciler struct {
	client.Client
	// APIReader reads Secrets the label-filtered cache does not hold.
	APIReader client.Reader
	Scheme    *runtime.Scheme
	Recorder  events.EventRecorder
}

// Reconcile reports a missing Broker, labels the Secret a User references,
// or ensures the credentials Secret it generates for one that references
// none. While the Broker is paused it changes nothing.
func (r *UserReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var u mqttv1alpha1.User
	if err := r.Get(ctx, req.NamespacedName, &u); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !u.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	var b mqttv1alpha1.Broker
	err := r.Get(ctx, types.NamespacedName{Namespace: u.Namespace, Name: u.Spec.BrokerRef.Name}, &b)
	if apierrors.IsNotFound(err) {
		return ctrl.Result{}, brokerNotFound(ctx, r.Client, r.Recorder, &u)
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	if mqttv1alpha1.IsPaused(&b) {
		return ctrl.Result{}, nil
	}
	if ref := u.Spec.PasswordSecretRef; ref != nil {
		// The Secret's appearance is announced by the Secret metadata
		// watch, so a missing one needs no polling.
		if err := ensureSecretLabelled(ctx, r.Client, r.APIReader, u.Namespace, ref.Name); err != nil {
			return ctrl.Result{}, err
		}
		owned, err := r.ownedSecrets(ctx, &u)
		if err != nil {
			return ctrl.Result{}, err
		}
		return ctrl.Result{}, r.deleteStaleSecrets(ctx, &u, owned, "")
	}
	return ctrl.Result{}, r.ensureGeneratedSecret(ctx, &u, &b)
}

// ensureGeneratedSecret creates the User's credentials Secret
// (mqttv1alpha1.GeneratedSecretName) with a strong random password the
// first time, and keeps its other keys, labels and annotations current
// without ever changing the password. A Secret of that name the User does
// not control is never overwritten: the CredentialsSecret condition and an
// Event say so. When the name changed, the password moves to the new
// Secret and the old one is deleted.
func (r *UserReconciler) ensureGeneratedSecret(ctx context.Context, u *mqttv1alpha1.User, b *mqttv1alpha1.Broker) error {
	name := mqttv1alpha1.GeneratedSecretName(u)
	cur, err := getSecret(ctx, r.Client, r.APIReader, u.Namespace, name)
	password := ""
	switch {
	case err == nil:
		if !metav1.IsControlledBy(cur, u) {
			msg := fmt.Sprintf("Secret %s exists and is not owned by User %s; the operator does not overwrite it: "+
				"delete it, set spec.credentialsSecret.name to another name, or set spec.passwordSecretRef to use it", name, u.Name)
			return r.setCredentialsCondition(ctx, u, corev1.EventTypeWarning, mqttv1alpha1.ReasonCredentialsSecretConflict, msg)
		}
		password = string(cur.Data[mqttv1alpha1.CredentialsPasswordKey])
	case !apierrors.IsNotFound(err):
		return fmt.Errorf("get Secret %s: %w", name, err)
	}
	owned, err := r.ownedSecrets(ctx, u)
	if err != nil {
		return err
	}
	for _, s := range owned {
		if password == "" && s.Name != name {
			password = string(s.Data[mqttv1alpha1.CredentialsPasswordKey]) // a rename keeps the password
		}
	}
	if password == "" {
		password = randomToken(24) // 192 bits
		r.event(u, corev1.EventTypeNormal, "PasswordGenerated", "Generated a password into Secret %s", name)
	}
	if err := apply(ctx, r.Client, r.Scheme, u, resource.UserCredentialsSecret(u, b, authsync.Username(u), password)); err != nil {
		return err
	}
	if err := r.deleteStaleSecrets(ctx, u, owned, name); err != nil {
		return err
	}
	return r.setCredentialsCondition(ctx, u, corev1.EventTypeNormal, mqttv1alpha1.ReasonCredentialsSecretReady, fmt.Sprintf("Secret %s is current", name))
}

// ownedSecrets lists the Secrets u controls, from the cache through the
// controller index (they carry the credentials label; a removed label is
// restored by the reconcile that its removal triggers).
func (r *UserReconciler) ownedSecrets(ctx context.Context, u *mqttv1alpha1.User) ([]corev1.Secret, error) {
	var list corev1.SecretList
	if err := r.List(ctx, &list, client.InNamespace(u.Namespace), client.MatchingFields{indexSecretController: string(u.UID)}); err != nil {
		return nil, fmt.Errorf("list credentials Secrets: %w", err)
	}
	return list.Items, nil
}

// deleteStaleSecrets deletes the Secrets in owned other than keep (all of
// them when keep is empty: the User now references a Secret).
func (r *UserReconciler) deleteStaleSecrets(ctx context.Context, u *mqttv1alpha1.User, owned []corev1.Secret, keep string) error {
	for i := range owned {
		s := &owned[i]
		if s.Name == keep {
			continue
		}
		if err := r.Delete(ctx, s, client.Preconditions{UID: &s.UID}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete old credentials Secret %s: %w", s.Name, err)
		}
		r.event(u, corev1.EventTypeNormal, "CredentialsSecretDeleted", "Deleted credentials Secret %s, no longer generated", s.Name)
	}
	return nil
}

// setCredentialsCondition records the state of the generated Secret in the
// CredentialsSecret condition, with an Event when it changes. The condition
// appears with a conflict and turns True when that is resolved. The patch is
// conditional: the Broker reconciler writes the same conditions list.
func (r *UserReconciler) setCredentialsCondition(ctx context.Context, u *mqttv1alpha1.User, eventType, reason, msg string) error {
	status := metav1.ConditionFalse
	if reason == mqttv1alpha1.ReasonCredentialsSecretReady {
		status = metav1.ConditionTrue
	}
	if status == metav1.ConditionTrue && meta.FindStatusCondition(u.Status.Conditions, mqttv1alpha1.ConditionCredentialsSecret) == nil {
		return nil // only a conflict is news: no write per User for the usual case
	}
	orig := u.DeepCopy()
	changed := meta.SetStatusCondition(&u.Status.Conditions, metav1.Condition{
		Type: mqttv1alpha1.ConditionCredentialsSecret, Status: status, Reason: reason, Message: msg, ObservedGeneration: u.Generation,
	})
	if !changed {
		return nil
	}
	r.event(u, eventType, reason, "%s", msg)
	if err := r.Status().Patch(ctx, u, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("patch User %s status: %w", u.Name, err)
	}
	return nil
}

func (r *UserReconciler) event(obj runtime.Object, eventType, reason, format string, args ...any) {
	if r.Recorder != nil {
		r.Recorder.Eventf(obj, nil, eventType, reason, reason, format, args...)
	}
}

// ensureSecretLabelled adds the credentials label to a Secret a User
// references, so the operator's label-filtered cache sees it rotate. A
// missing Secret is no error: the Secret metadata watch announces it.
// It reads past the cache: right after the label is removed the filtered
// cache may still hold the labelled copy, and once it drops it nothing
// would call this again.
func ensureSecretLabelled(ctx context.Context, c client.Client, reader client.Reader, namespace, name string) error {
	s := &corev1.Secret{}
	err := reader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, s)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get Secret %s: %w", name, err)
	}
	if s.Labels[resource.LabelCredentials] == "true" {
		return nil
	}
	patch := client.MergeFrom(s.DeepCopy())
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	s.Labels[resource.LabelCredentials] = "true"
	if err := c.Patch(ctx, s, patch); err != nil {
		return fmt.Errorf("label Secret %s: %w", name, err)
	}
	return nil
}

// brokerCredentialsChanged passes a Broker update that changes what the
// credentials Secrets of its Users say (the advertised listener) or that
// ends a pause: only then do its Users' Secrets need a look.
func brokerCredentialsChanged() predicate.Predicate {
	return updatesWhere(func(e event.UpdateEvent) bool {
		oldB, ok1 := e.ObjectOld.(*mqttv1alpha1.Broker)
		newB, ok2 := e.ObjectNew.(*mqttv1alpha1.Broker)
		if !ok1 || !ok2 {
			return false
		}
		if mqttv1alpha1.IsPaused(oldB) && !mqttv1alpha1.IsPaused(newB) {
			return true
		}
		return !maps.EqualFunc(resource.CredentialsListenerKeys(oldB), resource.CredentialsListenerKeys(newB), bytes.Equal)
	})
}

package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	mqttv1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
	"github.com/fleetmq/fleetmq/internal/authsync"
	"github.com/fleetmq/fleetmq/internal/resource"
)

// secretRecheck is how often a User whose referenced Secret is missing
// looks again: such a Secret is not in the label-filtered cache, so no
// event announces it.
const secretRecheck = 5 * time.Second

// UserReconciler handles what belongs to a User alone: its generated
// credentials Secret, labelling a referenced Secret so the operator sees it
// rotate, and the BrokerNotFound status. Everything else (the bundle, the
// Ready condition once the Broker exists) is its Broker's work.
type UserReconciler struct {
	client.Client
	// APIReader reads Secrets the label-filtered cache does not hold.
	APIReader client.Reader
	Scheme    *runtime.Scheme
	Recorder  events.EventRecorder
}

// Reconcile reports a missing Broker, labels the Secret a User references,
// or ensures the credentials Secret it generates for one that references
// none.
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
		return ctrl.Result{}, brokerNotFound(ctx, r.Client, &u)
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	if ref := u.Spec.PasswordSecretRef; ref != nil {
		found, err := ensureSecretLabelled(ctx, r.Client, r.APIReader, u.Namespace, ref.Name)
		if err != nil {
			return ctrl.Result{}, err
		}
		if !found {
			return ctrl.Result{RequeueAfter: secretRecheck}, nil
		}
		return ctrl.Result{}, nil
	}
	return ctrl.Result{}, r.ensureGeneratedSecret(ctx, &u, &b)
}

// ensureGeneratedSecret creates the User's credentials Secret
// (mqttv1alpha1.CredentialsSecretName) with a strong random password the
// first time, and keeps its username, host and port keys current without
// ever changing the password.
func (r *UserReconciler) ensureGeneratedSecret(ctx context.Context, u *mqttv1alpha1.User, b *mqttv1alpha1.Broker) error {
	name := mqttv1alpha1.CredentialsSecretName(u.Name)
	var cur corev1.Secret
	err := r.Get(ctx, types.NamespacedName{Namespace: u.Namespace, Name: name}, &cur)
	password := ""
	switch {
	case err == nil:
		if !metav1.IsControlledBy(&cur, u) {
			return fmt.Errorf("secret %s exists and is not owned by User %s: set spec.passwordSecretRef to use it", name, u.Name)
		}
		password = string(cur.Data[mqttv1alpha1.CredentialsPasswordKey])
	case !apierrors.IsNotFound(err):
		return fmt.Errorf("get Secret %s: %w", name, err)
	}
	if password == "" {
		password = randomToken(24) // 192 bits
		if r.Recorder != nil {
			r.Recorder.Eventf(u, nil, corev1.EventTypeNormal, "PasswordGenerated", "PasswordGenerated", "Generated a password into Secret %s", name)
		}
	}
	return apply(ctx, r.Client, r.Scheme, u, resource.UserCredentialsSecret(u, b, authsync.Username(u), password))
}

// ensureSecretLabelled adds the credentials label to a Secret a User
// references, so the operator's label-filtered cache sees it rotate; found
// is false when the Secret does not exist (yet).
func ensureSecretLabelled(ctx context.Context, c client.Client, reader client.Reader, namespace, name string) (found bool, err error) {
	var s corev1.Secret
	err = reader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, &s)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("get Secret %s: %w", name, err)
	}
	if s.Labels[resource.LabelCredentials] == "true" {
		return true, nil
	}
	patch := client.MergeFrom(s.DeepCopy())
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	s.Labels[resource.LabelCredentials] = "true"
	if err := c.Patch(ctx, &s, patch); err != nil {
		return false, fmt.Errorf("label Secret %s: %w", name, err)
	}
	return true, nil
}

package controllers

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	mqttv1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
)

// ACLReconciler reports ACLs whose Broker is missing; the Broker compiles
// the rest.
type ACLReconciler struct {
	client.Client
	Recorder events.EventRecorder
}

// Reconcile sets BrokerNotFound when the ACL's Broker is missing.
func (r *ACLReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var a mqttv1alpha1.ACL
	if err := r.Get(ctx, req.NamespacedName, &a); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	var b mqttv1alpha1.Broker
	err := r.Get(ctx, types.NamespacedName{Namespace: a.Namespace, Name: a.Spec.BrokerRef.Name}, &b)
	if apierrors.IsNotFound(err) {
		return ctrl.Result{}, brokerNotFound(ctx, r.Client, r.Recorder, &a)
	}
	return ctrl.Result{}, err
}

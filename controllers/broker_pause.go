package controllers

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	mqttv1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
)

// Pausing a Broker (mqttv1alpha1.AnnotationPaused "true") freezes what the
// operator does to it: no child is applied or deleted, no bundle compiled
// or pushed, its Users' credentials Secrets are left alone. The status
// says so (Paused condition, an Event); the rest of the status is kept as
// last observed. Removing the annotation resumes with a full reconcile.

// reconcilePause sets or clears the Paused condition on b (the caller
// patches the status) and reports whether b is paused.
func (r *BrokerReconciler) reconcilePause(b *mqttv1alpha1.Broker) bool {
	if !mqttv1alpha1.IsPaused(b) {
		if meta.FindStatusCondition(b.Status.Conditions, mqttv1alpha1.ConditionPaused) != nil {
			meta.RemoveStatusCondition(&b.Status.Conditions, mqttv1alpha1.ConditionPaused)
			r.event(b, corev1.EventTypeNormal, "Resumed", "Reconciliation resumed: annotation %s removed", mqttv1alpha1.AnnotationPaused)
		}
		return false
	}
	wasPaused := meta.IsStatusConditionTrue(b.Status.Conditions, mqttv1alpha1.ConditionPaused)
	meta.SetStatusCondition(&b.Status.Conditions, metav1.Condition{
		Type: mqttv1alpha1.ConditionPaused, Status: metav1.ConditionTrue, Reason: mqttv1alpha1.ReasonPaused,
		Message:            "reconciliation paused by annotation " + mqttv1alpha1.AnnotationPaused + "=true: children and auth pushes are left as they are",
		ObservedGeneration: b.Generation,
	})
	if !wasPaused {
		r.event(b, corev1.EventTypeNormal, mqttv1alpha1.ReasonPaused, "Reconciliation paused by annotation %s", mqttv1alpha1.AnnotationPaused)
	}
	return true
}

// pausedChanged passes a Broker update that sets or removes the pause.
func pausedChanged() predicate.Predicate {
	return updatesWhere(func(e event.UpdateEvent) bool {
		return mqttv1alpha1.IsPaused(e.ObjectOld) != mqttv1alpha1.IsPaused(e.ObjectNew)
	})
}

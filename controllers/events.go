package controllers

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	mqttv1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
)

// Events announce state changes, one per transition: they compare the
// status before a pass with the status the pass wrote, and are recorded
// only once that write succeeded (a write that conflicted is retried, and
// the retry compares again), so a reconcile that changes nothing records
// nothing.
//
// The recorder folds Events of the same object, type and reason into one
// series (its count grows, its note stays the first one's), so a change to
// a different state is recorded under that state's reason: a Broker that
// is not ready says why in the Event's reason (the Ready condition's).

// Event reasons.
const (
	eventReady               = "Ready"
	eventPodsReady           = "PodsReady"
	eventAuthRevisionApplied = "AuthRevisionApplied"
	eventAuthPushFailed      = "AuthPushFailed"
	eventAuthPushRecovered   = "AuthPushRecovered"
	eventApplied             = "Applied"
)

// warningReasons of a Broker's Ready condition need a person's attention.
var warningReasons = map[string]bool{
	mqttv1alpha1.ReasonReconcileFailed:          true,
	mqttv1alpha1.ReasonTLSSecretNotFound:        true,
	mqttv1alpha1.ReasonPodsNotStarting:          true,
	mqttv1alpha1.ReasonProgressDeadlineExceeded: true,
}

// authReasons of a Broker's Ready condition are about the auth bundle's
// rollout, which has events of its own (AuthRevisionApplied, AuthPush*).
var authReasons = map[string]bool{
	mqttv1alpha1.ReasonAuthPending:    true,
	mqttv1alpha1.ReasonAuthPushFailed: true,
}

// brokerTransitions records the Events of a Broker whose status went from
// old to b's.
func (r *BrokerReconciler) brokerTransitions(old, b *mqttv1alpha1.Broker) {
	if typ, reason, note, ok := readyTransition(old, b); ok {
		r.event(b, typ, reason, "%s", note)
	}
	if old.Status.ReadyReplicas != b.Status.ReadyReplicas {
		r.event(b, corev1.EventTypeNormal, eventPodsReady, "%d of %d pods ready", b.Status.ReadyReplicas, replicas(b))
	}
	oa := meta.FindStatusCondition(old.Status.Conditions, mqttv1alpha1.ConditionAuthSynced)
	na := meta.FindStatusCondition(b.Status.Conditions, mqttv1alpha1.ConditionAuthSynced)
	if na == nil {
		return
	}
	wasSynced := oa != nil && oa.Status == metav1.ConditionTrue
	wasFailing := oa != nil && oa.Reason == mqttv1alpha1.ReasonAuthPushFailed
	switch {
	case na.Status == metav1.ConditionTrue && (!wasSynced || old.Status.AuthRevision != b.Status.AuthRevision):
		if wasFailing {
			r.event(b, corev1.EventTypeNormal, eventAuthPushRecovered, "Auth pushes succeed again")
		}
		r.event(b, corev1.EventTypeNormal, eventAuthRevisionApplied, "Every ready pod applied auth revision %d", b.Status.AuthRevision)
	case na.Reason == mqttv1alpha1.ReasonAuthPushFailed && !wasFailing:
		r.event(b, corev1.EventTypeWarning, eventAuthPushFailed, "%s", na.Message)
	case wasFailing && na.Reason != mqttv1alpha1.ReasonAuthPushFailed:
		r.event(b, corev1.EventTypeNormal, eventAuthPushRecovered, "Auth pushes succeed again")
	}
}

// readyTransition is the Event of a change of the Broker's Ready
// condition, if any. The auth rollout of a Broker that stayed available
// (Ready True → Pending → True) is announced by AuthRevisionApplied alone.
func readyTransition(old, b *mqttv1alpha1.Broker) (typ, reason, note string, ok bool) {
	o := meta.FindStatusCondition(old.Status.Conditions, mqttv1alpha1.ConditionReady)
	n := meta.FindStatusCondition(b.Status.Conditions, mqttv1alpha1.ConditionReady)
	switch {
	case n == nil, o != nil && o.Status == n.Status && o.Reason == n.Reason, authReasons[n.Reason]:
		return "", "", "", false
	case n.Status == metav1.ConditionTrue:
		if o != nil && authReasons[o.Reason] && wasAvailableBefore(old, o) {
			return "", "", "", false
		}
		return corev1.EventTypeNormal, eventReady, n.Message, true
	case warningReasons[n.Reason]:
		return corev1.EventTypeWarning, n.Reason, "Not ready: " + n.Message, true
	default:
		return corev1.EventTypeNormal, n.Reason, "Not ready: " + n.Message, true
	}
}

// wasAvailableBefore reports whether old was Available before its Ready
// condition (o) turned False: then Ready was True in between, and the
// False was only an auth rollout.
func wasAvailableBefore(old *mqttv1alpha1.Broker, o *metav1.Condition) bool {
	a := meta.FindStatusCondition(old.Status.Conditions, mqttv1alpha1.ConditionAvailable)
	return a != nil && a.Status == metav1.ConditionTrue && o.LastTransitionTime.After(a.LastTransitionTime.Time)
}

// readySnapshot is a User's or ACL's Ready condition and resourceVersion
// before the Broker reconciler writes its status: a changed
// resourceVersion afterwards means the write went through.
type readySnapshot struct {
	resourceVersion string
	ready           metav1.Condition
}

// objectsOf points at each element of items (Users or ACLs).
func objectsOf[E any](items []E) []client.Object {
	out := make([]client.Object, len(items))
	for i := range items {
		out[i] = any(&items[i]).(client.Object)
	}
	return out
}

// snapshotReady takes the readySnapshot of each User or ACL, by snapshotKey.
func snapshotReady(objs []client.Object) map[string]readySnapshot {
	out := make(map[string]readySnapshot, len(objs))
	for _, obj := range objs {
		snap := readySnapshot{resourceVersion: obj.GetResourceVersion()}
		if c := readyOf(obj); c != nil {
			snap.ready = *c
		}
		out[snapshotKey(obj)] = snap
	}
	return out
}

// snapshotKey tells a User from an ACL of the same name.
func snapshotKey(obj client.Object) string {
	s, _ := statusOf(obj)
	return s.kind + "/" + obj.GetName()
}

func readyOf(obj client.Object) *metav1.Condition {
	s, ok := statusOf(obj)
	if !ok {
		return nil
	}
	return meta.FindStatusCondition(*s.conditions, mqttv1alpha1.ConditionReady)
}

// objectTransitions records Applied when a User or ACL became Ready, and a
// Warning under the Ready condition's reason when it is rejected (left out
// of the bundle) for a new reason. Pending is routine and has no Event.
func (r *BrokerReconciler) objectTransitions(objs []client.Object, before map[string]readySnapshot) {
	for _, obj := range objs {
		prev, ok := before[snapshotKey(obj)]
		if !ok || prev.resourceVersion == obj.GetResourceVersion() {
			continue // not written
		}
		n := readyOf(obj)
		if n == nil || (prev.ready.Status == n.Status && prev.ready.Reason == n.Reason) {
			continue
		}
		switch {
		case n.Status == metav1.ConditionTrue:
			r.event(obj, corev1.EventTypeNormal, eventApplied, "%s", capitalize(n.Message))
		case n.Reason != mqttv1alpha1.ReasonPending:
			r.event(obj, corev1.EventTypeWarning, n.Reason, "Rejected: %s", n.Message)
		}
	}
}

func capitalize(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return fmt.Sprintf("%c%s", s[0]-'a'+'A', s[1:])
}

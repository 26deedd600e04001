package controllers

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	mqttv1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
	"github.com/fleetmq/fleetmq/internal/authsync"
)

// The status of a User or an ACL has two writers: the Broker reconciler
// (updateObjectStatuses, after each push) and, while the Broker is missing,
// the object's own reconciler (brokerNotFound). Both go through
// patchReadyStatus.

// userOrACL is a User or an ACL: the kinds whose status says whether they
// are in force on their Broker.
type userOrACL interface {
	*mqttv1alpha1.User | *mqttv1alpha1.ACL
	client.Object
}

// readyStatus points at what a User's and an ACL's status share: the
// conditions (of which the operator writes Ready), observedGeneration and
// appliedRevision.
type readyStatus struct {
	kind               string
	conditions         *[]metav1.Condition
	observedGeneration *int64
	appliedRevision    *int64
}

// statusOf returns the shared status fields of a User or an ACL; ok is
// false for any other object.
func statusOf(obj client.Object) (s readyStatus, ok bool) {
	switch o := obj.(type) {
	case *mqttv1alpha1.User:
		return readyStatus{"User", &o.Status.Conditions, &o.Status.ObservedGeneration, &o.Status.AppliedRevision}, true
	case *mqttv1alpha1.ACL:
		return readyStatus{"ACL", &o.Status.Conditions, &o.Status.ObservedGeneration, &o.Status.AppliedRevision}, true
	}
	return readyStatus{}, false
}

// patchReadyStatus writes the status of obj, a User or an ACL: setOwn (nil
// for none) sets the kind's own fields, ready becomes the Ready condition
// and observedGeneration obj's generation. The status is sent as a JSON
// merge patch against obj as it was passed in, and only when it changed;
// opts (client.MergeFromWithOptimisticLock) make the patch conditional. A
// deleted object is no error: it has no status left to write.
func patchReadyStatus[T userOrACL](ctx context.Context, c client.Client, obj T, ready metav1.Condition, setOwn func(T), opts ...client.MergeFromOption) error {
	orig := obj.DeepCopyObject().(T)
	if setOwn != nil {
		setOwn(obj)
	}
	s, _ := statusOf(obj) // T is a User or an ACL
	gen := obj.GetGeneration()
	ready.Type, ready.ObservedGeneration = mqttv1alpha1.ConditionReady, gen
	meta.SetStatusCondition(s.conditions, ready)
	*s.observedGeneration = gen
	if equality.Semantic.DeepEqual(orig, obj) {
		return nil
	}
	if err := c.Status().Patch(ctx, obj, client.MergeFromWithOptions(orig, opts...)); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("patch %s %s status: %w", s.kind, obj.GetName(), err)
	}
	return nil
}

// brokerNotFound records that obj refers to a Broker missing from its
// namespace, with a Warning Event when that is news (rec may be nil).
// When the Broker appears, its reconciler takes over the status.
func brokerNotFound[T userOrACL](ctx context.Context, c client.Client, rec events.EventRecorder, obj T) error {
	s, _ := statusOf(obj)
	was := meta.FindStatusCondition(*s.conditions, mqttv1alpha1.ConditionReady)
	news := was == nil || was.Reason != mqttv1alpha1.ReasonBrokerNotFound
	msg := fmt.Sprintf("Broker %q not found in namespace %s", brokerRefOf(obj), obj.GetNamespace())
	err := patchReadyStatus(ctx, c, obj, metav1.Condition{
		Status: metav1.ConditionFalse, Reason: mqttv1alpha1.ReasonBrokerNotFound, Message: msg,
	}, nil)
	if err == nil && news && rec != nil {
		rec.Eventf(obj, nil, corev1.EventTypeWarning, mqttv1alpha1.ReasonBrokerNotFound, mqttv1alpha1.ReasonBrokerNotFound, "%s", msg)
	}
	return err
}

// updateObjectStatuses sets Ready on each User and ACL of b: true once
// every ready pod applied a revision containing the object as it is now.
func (r *BrokerReconciler) updateObjectStatuses(ctx context.Context, b *mqttv1alpha1.Broker, st *brokerState) error {
	minApplied := int64(-1)
	for _, p := range st.pods {
		if p.Ready && (minApplied < 0 || p.AppliedRevision < minApplied) {
			minApplied = p.AppliedRevision
		}
	}
	users, acls, err := r.usersAndACLs(ctx, b)
	if err != nil {
		return err
	}
	objs := append(objectsOf(users), objectsOf(acls)...)
	before := snapshotReady(objs)
	defer r.objectTransitions(objs, before)
	errs := patchCompiled(ctx, r.Client, users, st.auth.Users, minApplied, func(u *mqttv1alpha1.User, os authsync.ObjectStatus) {
		u.Status.Username = os.Username
		u.Status.SecretName = os.SecretName
	})
	errs = append(errs, patchCompiled(ctx, r.Client, acls, st.auth.ACLs, minApplied, func(a *mqttv1alpha1.ACL, os authsync.ObjectStatus) {
		a.Status.RuleCount = os.RuleCount
	})...)
	return errors.Join(errs...)
}

// patchCompiled writes the status of each object in items that the compile
// reported on (outcomes, by name): Ready and appliedRevision from its
// outcome and minApplied, plus what setOwn takes from the outcome. The
// patches are diffs against the cache, so they carry its resourceVersion:
// a stale cache is a conflict, not a lost field.
func patchCompiled[E any, T interface {
	*E
	userOrACL
}](ctx context.Context, c client.Client, items []E, outcomes map[string]authsync.ObjectStatus, minApplied int64, setOwn func(T, authsync.ObjectStatus)) []error {
	var errs []error
	for i := range items {
		obj := any(&items[i]).(T) // T is *E; Go converts no further through a union
		os, ok := outcomes[obj.GetName()]
		if !ok || (minApplied < 0 && stillInForce(obj, os)) {
			continue
		}
		errs = append(errs, patchReadyStatus(ctx, c, obj, objectReady(os, minApplied), func(obj T) {
			setOwn(obj, os)
			s, _ := statusOf(obj)
			*s.appliedRevision = appliedFor(os, minApplied)
		}, client.MergeFromWithOptimisticLock{}))
	}
	return errs
}

// stillInForce reports that obj's status already says Ready for exactly
// the content os describes. While no pod is ready (a restart, a rollout of
// one replica) such an object keeps its status: the pod that comes back
// starts from the auth Secret, which holds it, and flipping every User to
// Pending and back would cost two writes per object for nothing.
func stillInForce(obj client.Object, os authsync.ObjectStatus) bool {
	s, _ := statusOf(obj)
	c := meta.FindStatusCondition(*s.conditions, mqttv1alpha1.ConditionReady)
	return os.Included && c != nil && c.Status == metav1.ConditionTrue &&
		c.ObservedGeneration == obj.GetGeneration() && *s.appliedRevision == os.IncludedRevision
}

// appliedFor is the first revision that contains the object as it is now,
// once every ready pod applied it; 0 otherwise. It is not minApplied: that
// moves with every unrelated edit, and writing it would patch every User
// and ACL of the Broker on each revision.
func appliedFor(os authsync.ObjectStatus, minApplied int64) int64 {
	if os.Included && minApplied >= os.IncludedRevision {
		return os.IncludedRevision
	}
	return 0
}

// objectReady is the Ready condition of a User or an ACL whose compile
// outcome is os, when every ready pod applied minApplied (-1: no pod is
// ready).
func objectReady(os authsync.ObjectStatus, minApplied int64) metav1.Condition {
	c := metav1.Condition{Status: metav1.ConditionFalse}
	switch {
	case !os.Included:
		c.Reason, c.Message = os.Reason, os.Message
	case minApplied < 0:
		c.Reason = mqttv1alpha1.ReasonPending
		c.Message = fmt.Sprintf("in auth revision %d; no broker pod is ready to apply it", os.IncludedRevision)
	case minApplied < os.IncludedRevision:
		c.Reason = mqttv1alpha1.ReasonPending
		c.Message = fmt.Sprintf("in auth revision %d; not yet applied by every ready broker pod", os.IncludedRevision)
	default:
		c.Status = metav1.ConditionTrue
		c.Reason = mqttv1alpha1.ReasonSynced
		c.Message = fmt.Sprintf("applied by every ready broker pod (in force since revision %d)", os.IncludedRevision)
	}
	return c
}

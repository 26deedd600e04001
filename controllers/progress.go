package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	mqttv1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
	"github.com/fleetmq/fleetmq/internal/resource"
)

// A Broker makes progress like a Deployment: pods that cannot start, or
// auth pushes that keep failing, are transient until
// spec.progressDeadlineSeconds passes, then Ready says
// ProgressDeadlineExceeded and Argo CD shows the Broker Degraded.

// defaultProgressDeadline is spec.progressDeadlineSeconds when unset (the
// CRD defaults it too).
const defaultProgressDeadline = 600 * time.Second

// stuckWaitingReasons are container waiting reasons that do not clear by
// themselves; ContainerCreating and PodInitializing are normal progress.
var stuckWaitingReasons = []string{
	"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull",
	"CrashLoopBackOff", "CreateContainerConfigError", "CreateContainerError", "RunContainerError",
}

// progress is what holds a Broker back, for its Ready condition.
type progress struct {
	// stuck describes the oldest pod that cannot start ("" when none).
	stuck string
	// stuckSince is when that pod last made progress (turned unready, or
	// was created).
	stuckSince time.Time
	// pushFailingSince is when the current run of failed pushes began
	// (zero while pushes succeed).
	pushFailingSince time.Time
}

func progressDeadline(b *mqttv1alpha1.Broker) time.Duration {
	if d := b.Spec.ProgressDeadlineSeconds; d != nil && *d > 0 {
		return time.Duration(*d) * time.Second
	}
	return defaultProgressDeadline
}

// checkProgress looks for pods of b that cannot start and tracks how long
// pushes have been failing. PVCs are read through the uncached reader:
// the StatefulSet controller creates them, with the selector labels only,
// and they are read only while a pod waits for one.
func (r *BrokerReconciler) checkProgress(ctx context.Context, b *mqttv1alpha1.Broker, st *brokerState) error {
	key := types.NamespacedName{Namespace: b.Namespace, Name: b.Name}
	if st.pushErr == nil {
		r.pushFailingSince.Delete(key)
	} else {
		since, _ := r.pushFailingSince.LoadOrStore(key, time.Now())
		st.progress.pushFailingSince = since.(time.Time)
	}

	var pods corev1.PodList
	if err := r.List(ctx, &pods, client.InNamespace(b.Namespace), client.MatchingLabels(resource.Labels(b))); err != nil {
		return fmt.Errorf("list pods: %w", err)
	}
	slices.SortFunc(pods.Items, func(a, c corev1.Pod) int { return strings.Compare(a.Name, c.Name) })
	for i := range pods.Items {
		pod := &pods.Items[i]
		if podReady(pod) || !pod.DeletionTimestamp.IsZero() {
			continue
		}
		why, err := r.whyNotStarting(ctx, pod)
		if err != nil {
			return err
		}
		if why == "" {
			continue
		}
		since := lastProgress(pod)
		if st.progress.stuck == "" || since.Before(st.progress.stuckSince) {
			st.progress.stuck, st.progress.stuckSince = fmt.Sprintf("pod %s: %s", pod.Name, why), since
		}
	}
	return nil
}

// whyNotStarting names what keeps pod from starting, "" when nothing known
// does: a container stuck waiting, or an unbound claim it needs.
func (r *BrokerReconciler) whyNotStarting(ctx context.Context, pod *corev1.Pod) (string, error) {
	for _, cs := range slices.Concat(pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses) {
		if w := cs.State.Waiting; w != nil && slices.Contains(stuckWaitingReasons, w.Reason) {
			msg := fmt.Sprintf("container %s is waiting: %s", cs.Name, w.Reason)
			if w.Message != "" {
				msg += ": " + w.Message
			}
			return msg, nil
		}
	}
	if pod.Spec.NodeName != "" {
		return "", nil // scheduled: its claims are bound
	}
	for _, v := range pod.Spec.Volumes {
		if v.PersistentVolumeClaim == nil {
			continue
		}
		var pvc corev1.PersistentVolumeClaim
		err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: pod.Namespace, Name: v.PersistentVolumeClaim.ClaimName}, &pvc)
		switch {
		case apierrors.IsNotFound(err):
			return fmt.Sprintf("PersistentVolumeClaim %s does not exist", v.PersistentVolumeClaim.ClaimName), nil
		case err != nil:
			return "", fmt.Errorf("get PersistentVolumeClaim %s: %w", v.PersistentVolumeClaim.ClaimName, err)
		case pvc.Status.Phase != corev1.ClaimBound:
			return fmt.Sprintf("PersistentVolumeClaim %s is %s (not bound)%s", pvc.Name, pvcPhase(&pvc), schedulerMessage(pod)), nil
		}
	}
	return "", nil
}

func pvcPhase(pvc *corev1.PersistentVolumeClaim) corev1.PersistentVolumeClaimPhase {
	if pvc.Status.Phase == "" {
		return corev1.ClaimPending
	}
	return pvc.Status.Phase
}

// schedulerMessage is the scheduler's word on an unschedulable pod.
func schedulerMessage(pod *corev1.Pod) string {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Message != "" {
			return "; " + c.Message
		}
	}
	return ""
}

// lastProgress is when pod last changed for the better or the worse: its
// Ready condition's transition (a pod that ran and then crashes counts from
// then), else its creation.
func lastProgress(pod *corev1.Pod) time.Time {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady && !c.LastTransitionTime.IsZero() {
			return c.LastTransitionTime.Time
		}
	}
	return pod.CreationTimestamp.Time
}

// exceeded reports what has been stuck past b's deadline ("" for nothing)
// and, otherwise, how long until the first stuck thing would be (0: none).
func (p progress) exceeded(b *mqttv1alpha1.Broker, now time.Time) (string, time.Duration) {
	deadline := progressDeadline(b)
	var next time.Duration
	check := func(since time.Time) bool {
		if since.IsZero() {
			return false
		}
		left := deadline - now.Sub(since)
		if left <= 0 {
			return true
		}
		if next == 0 || left < next {
			next = left
		}
		return false
	}
	if check(p.stuckSince) {
		return fmt.Sprintf("not started for more than %v: %s", deadline, p.stuck), 0
	}
	if check(p.pushFailingSince) {
		return fmt.Sprintf("auth pushes failing for more than %v", deadline), 0
	}
	return "", next
}

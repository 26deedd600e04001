package controllers_test

// What an operator of the product sees besides status: Events, the
// operator's metrics, and a Broker that turns Degraded-worthy
// (ProgressDeadlineExceeded) when its pods cannot start or its pushes keep
// failing.

import (
	"fmt"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	apiresource "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	mqttv1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
	"github.com/fleetmq/fleetmq/internal/resource"
)

// A push to a real broker shows in Events (once per transition) and in the
// operator's metrics; a deleted Broker's series go with it.
func TestEventsAndMetrics(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	create(t, newBroker(ns, "acme"))
	create(t, newUser(ns, "alice", "acme", ""))
	p := startBroker(t, ns, "acme")
	createReadyPod(t, ns, "acme", "127.0.0.4", p)
	setReadyReplicas(t, ns, "acme", 1)
	br := waitBroker(t, ns, "acme", "Ready", func(b *mqttv1alpha1.Broker) bool {
		return hasCond(b.Status.Conditions, mqttv1alpha1.ConditionReady, metav1.ConditionTrue, mqttv1alpha1.ReasonReconciled, b.Generation)
	})
	waitUserReady(t, ns, "alice", metav1.ConditionTrue, mqttv1alpha1.ReasonSynced)
	rev := br.Status.AuthRevision

	waitEvents(t, ns, "Broker", "acme", map[string]int{"Ready": 1, "PodsReady": 1, "AuthRevisionApplied": 1})
	waitEvents(t, ns, "User", "alice", map[string]int{"Applied": 1})

	labels := map[string]string{"namespace": ns, "broker": "acme"}
	eventually(t, waitTimeout, "per-Broker metrics", func() (bool, string) {
		d, _ := metricValue(t, "fleetmq_operator_broker_auth_revision_desired", labels)
		a, _ := metricValue(t, "fleetmq_operator_broker_auth_revision_applied", labels)
		r, _ := metricValue(t, "fleetmq_operator_broker_pods_ready", labels)
		return d == float64(rev) && a == float64(rev) && r == 1, fmt.Sprintf("desired %v, applied %v, pods ready %v; want %d, %d, 1", d, a, r, rev, rev)
	})

	// A second User is a routine auth rollout: a push (the broker started
	// with the bundle of the Secret, so this is the first), then
	// AuthRevisionApplied again and no new Ready (the Broker stayed
	// available). The push series are operator-wide: other tests' pushes
	// only add to them.
	applied, _ := metricValue(t, "fleetmq_operator_auth_pushes_total", map[string]string{"result": "applied"})
	timed, _ := metricValue(t, "fleetmq_operator_auth_push_duration_seconds", nil)
	create(t, newUser(ns, "bob", "acme", ""))
	waitUserReady(t, ns, "bob", metav1.ConditionTrue, mqttv1alpha1.ReasonSynced)
	if n, _ := metricValue(t, "fleetmq_operator_auth_pushes_total", map[string]string{"result": "applied"}); n < applied+1 {
		t.Errorf("fleetmq_operator_auth_pushes_total{result=applied} = %v after a push, want at least %v", n, applied+1)
	}
	if n, _ := metricValue(t, "fleetmq_operator_auth_push_duration_seconds", nil); n < timed+1 {
		t.Errorf("fleetmq_operator_auth_push_duration_seconds count = %v after a push, want at least %v", n, timed+1)
	}
	waitEvents(t, ns, "Broker", "acme", map[string]int{"AuthRevisionApplied": 2})
	waitEvents(t, ns, "User", "bob", map[string]int{"Applied": 1})
	if got := countEvents(t, ns, "Broker", "acme"); got["Ready"] != 1 || got["Pending"] != 0 || got["PodsReady"] != 1 {
		t.Errorf("Broker events after an auth rollout = %v; want Ready 1, Pending 0, PodsReady 1", got)
	}
	if got := countEvents(t, ns, "User", "alice"); got["Applied"] != 1 {
		t.Errorf("User alice events after bob joined = %v; want Applied 1 (her state did not change)", got)
	}

	if err := k8s.Delete(ctx, newBroker(ns, "acme")); err != nil {
		t.Fatal(err)
	}
	eventually(t, waitTimeout, "per-Broker series deleted with the Broker", func() (bool, string) {
		for _, name := range []string{"fleetmq_operator_broker_auth_revision_desired", "fleetmq_operator_broker_auth_revision_applied", "fleetmq_operator_broker_pods_ready"} {
			if v, ok := metricValue(t, name, labels); ok {
				return false, fmt.Sprintf("%s%v = %v", name, labels, v)
			}
		}
		return true, ""
	})
}

// A pod that cannot start makes the Broker PodsNotStarting with the
// container's waiting reason, then ProgressDeadlineExceeded once it has
// been stuck longer than spec.progressDeadlineSeconds (default 600).
func TestPodsNotStarting(t *testing.T) {
	t.Parallel()
	for _, reason := range []string{"ImagePullBackOff", "ErrImagePull", "CrashLoopBackOff"} {
		t.Run(reason, func(t *testing.T) {
			t.Parallel()
			ns := newNamespace(t)
			create(t, newBroker(ns, "acme"))
			// The first pass, before any pod, reports PodsNotReady; then the
			// pod comes. (Created sooner, the first report could already be
			// PodsNotStarting, and the Events below would differ.)
			waitBroker(t, ns, "acme", "PodsNotReady", func(b *mqttv1alpha1.Broker) bool {
				return hasCond(b.Status.Conditions, mqttv1alpha1.ConditionReady, metav1.ConditionFalse, mqttv1alpha1.ReasonPodsNotReady, b.Generation)
			})
			pod := createStuckPod(t, ns, "acme", nil)
			setPodStatus(t, pod, corev1.PodStatus{
				Phase:      corev1.PodPending,
				Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse, LastTransitionTime: metav1.Now()}},
				ContainerStatuses: []corev1.ContainerStatus{{
					Name: resource.ContainerName, Image: "img",
					State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: "stuck on purpose"}},
				}},
			})
			b := waitBroker(t, ns, "acme", "PodsNotStarting", func(b *mqttv1alpha1.Broker) bool {
				return hasCond(b.Status.Conditions, mqttv1alpha1.ConditionReady, metav1.ConditionFalse, mqttv1alpha1.ReasonPodsNotStarting, b.Generation)
			})
			want := "pod acme-0: container broker is waiting: " + reason + ": stuck on purpose"
			if c := meta.FindStatusCondition(b.Status.Conditions, mqttv1alpha1.ConditionReady); c.Message != want {
				t.Errorf("Ready message %q, want %q", c.Message, want)
			}

			// Stuck since an hour ago: past the default deadline.
			pod.Status.Conditions[0].LastTransitionTime = metav1.NewTime(time.Now().Add(-time.Hour))
			setPodStatus(t, pod, pod.Status)
			b = waitBroker(t, ns, "acme", "ProgressDeadlineExceeded", func(b *mqttv1alpha1.Broker) bool {
				return hasCond(b.Status.Conditions, mqttv1alpha1.ConditionReady, metav1.ConditionFalse, mqttv1alpha1.ReasonProgressDeadlineExceeded, b.Generation)
			})
			if c := meta.FindStatusCondition(b.Status.Conditions, mqttv1alpha1.ConditionReady); c.Message != "not started for more than 10m0s: "+want {
				t.Errorf("Ready message %q, want %q", c.Message, "not started for more than 10m0s: "+want)
			}
			waitEvents(t, ns, "Broker", "acme", map[string]int{"PodsNotReady": 1, "PodsNotStarting": 1, "ProgressDeadlineExceeded": 1})
			if e := findEvent(t, ns, "acme", "ProgressDeadlineExceeded"); e.Type != corev1.EventTypeWarning || !strings.Contains(e.Note, reason) {
				t.Errorf("ProgressDeadlineExceeded Event: type %s, note %q; want a Warning naming %s", e.Type, e.Note, reason)
			}
		})
	}
}

// A pod waiting for a claim that stays unbound counts too; the operator
// looks again when the deadline passes, with no event to wake it.
func TestUnboundClaimPastDeadline(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	b := newBroker(ns, "acme")
	b.Spec.Persistence = &mqttv1alpha1.PersistenceSpec{}
	b.Spec.ProgressDeadlineSeconds = ptr.To[int32](2)
	create(t, b)
	claim := "data-acme-0"
	create(t, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: claim},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: apiresource.MustParse("1Gi")}},
		},
	})
	pod := createStuckPod(t, ns, "acme", []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim},
	}}})
	setPodStatus(t, pod, corev1.PodStatus{
		Phase: corev1.PodPending,
		Conditions: []corev1.PodCondition{{
			Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable,
			Message: "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims",
		}},
	})
	got := waitBroker(t, ns, "acme", "ProgressDeadlineExceeded", func(b *mqttv1alpha1.Broker) bool {
		return hasCond(b.Status.Conditions, mqttv1alpha1.ConditionReady, metav1.ConditionFalse, mqttv1alpha1.ReasonProgressDeadlineExceeded, b.Generation)
	})
	want := "not started for more than 2s: pod acme-0: PersistentVolumeClaim data-acme-0 is Pending (not bound); 0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims"
	if c := meta.FindStatusCondition(got.Status.Conditions, mqttv1alpha1.ConditionReady); c.Message != want {
		t.Errorf("Ready message %q, want %q", c.Message, want)
	}
}

// One failed push is transient (PushFailed); pushes failing past the
// deadline are ProgressDeadlineExceeded; a push that gets through again
// makes the Broker Ready, with an Event for each step.
func TestPushFailingPastDeadline(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	b := newBroker(ns, "acme")
	b.Spec.ProgressDeadlineSeconds = ptr.To[int32](2)
	create(t, b)
	pod := createStuckPod(t, ns, "acme", nil)
	resolver.set(ns, pod.Name, freeAddr(t)) // nothing listens there
	setPodStatus(t, pod, corev1.PodStatus{
		Phase: corev1.PodRunning, PodIP: "127.0.0.5", PodIPs: []corev1.PodIP{{IP: "127.0.0.5"}},
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}},
	})
	setReadyReplicas(t, ns, "acme", 1)
	waitEvents(t, ns, "Broker", "acme", map[string]int{"AuthPushFailed": 1})
	waitBroker(t, ns, "acme", "ProgressDeadlineExceeded", func(b *mqttv1alpha1.Broker) bool {
		c := meta.FindStatusCondition(b.Status.Conditions, mqttv1alpha1.ConditionReady)
		return c != nil && c.Reason == mqttv1alpha1.ReasonProgressDeadlineExceeded && c.ObservedGeneration == b.Generation &&
			strings.HasPrefix(c.Message, "auth pushes failing for more than 2s: pod acme-0: ") &&
			hasCond(b.Status.Conditions, mqttv1alpha1.ConditionAuthSynced, metav1.ConditionFalse, mqttv1alpha1.ReasonAuthPushFailed, b.Generation)
	})
	labels := map[string]string{"namespace": ns, "broker": "acme"}
	if n, ok := metricValue(t, "fleetmq_operator_broker_auth_push_failures_total", labels); !ok || n < 2 {
		t.Errorf("fleetmq_operator_broker_auth_push_failures_total%v = %v (present %v), want at least 2", labels, n, ok)
	}

	p := startBroker(t, ns, "acme")
	resolver.set(ns, pod.Name, p.AdminAddr)
	// A label change wakes the reconciler now, not at its next backoff.
	update(t, newBroker(ns, "acme"), func(b *mqttv1alpha1.Broker) { b.Labels = map[string]string{"wake": "up"} })
	waitBroker(t, ns, "acme", "Ready again", func(b *mqttv1alpha1.Broker) bool {
		return hasCond(b.Status.Conditions, mqttv1alpha1.ConditionReady, metav1.ConditionTrue, mqttv1alpha1.ReasonReconciled, b.Generation)
	})
	waitEvents(t, ns, "Broker", "acme", map[string]int{"AuthPushFailed": 1, "AuthPushRecovered": 1, "AuthRevisionApplied": 1, "Ready": 1})
}

// ---- helpers ----

// createStuckPod creates the broker's pod <broker>-0 as the StatefulSet would
// (its template's labels), not ready, with extra volumes.
func createStuckPod(t testing.TB, ns, broker string, volumes []corev1.Volume) *corev1.Pod {
	t.Helper()
	var sts appsv1.StatefulSet
	eventually(t, waitTimeout, "StatefulSet "+broker, func() (bool, string) {
		err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: broker}, &sts)
		return err == nil, fmt.Sprint(err)
	})
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: broker + "-0", Labels: sts.Spec.Template.Labels},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: resource.ContainerName, Image: sts.Spec.Template.Spec.Containers[0].Image}},
			Volumes:    volumes,
		},
	}
	create(t, pod)
	return pod
}

// setPodStatus does the kubelet's part.
func setPodStatus(t testing.TB, pod *corev1.Pod, st corev1.PodStatus) {
	t.Helper()
	for range 10 {
		get(t, pod)
		pod.Status = st
		err := k8s.Status().Update(ctx, pod)
		if err == nil {
			return
		}
		if !apierrors.IsConflict(err) {
			t.Fatalf("set status of Pod %s: %v", pod.Name, err)
		}
	}
	t.Fatalf("set status of Pod %s: conflicts did not stop", pod.Name)
}

// countEvents counts the Events about one object by reason, a series
// (isomorphic Events the recorder folds into one) by its count.
func countEvents(t testing.TB, ns, kind, name string) map[string]int {
	t.Helper()
	var list eventsv1.EventList
	if err := k8s.List(ctx, &list, client.InNamespace(ns)); err != nil {
		t.Fatalf("list Events: %v", err)
	}
	got := map[string]int{}
	for _, e := range list.Items {
		if e.Regarding.Kind != kind || e.Regarding.Name != name {
			continue
		}
		n := 1
		if e.Series != nil {
			n = int(e.Series.Count)
		}
		got[e.Reason] += n
	}
	return got
}

// findEvent returns the Broker's Event with reason.
func findEvent(t testing.TB, ns, broker, reason string) eventsv1.Event {
	t.Helper()
	var list eventsv1.EventList
	if err := k8s.List(ctx, &list, client.InNamespace(ns)); err != nil {
		t.Fatalf("list Events: %v", err)
	}
	for _, e := range list.Items {
		if e.Regarding.Kind == "Broker" && e.Regarding.Name == broker && e.Reason == reason {
			return e
		}
	}
	t.Fatalf("no Event %s about Broker %s", reason, broker)
	return eventsv1.Event{}
}

// waitEvents waits until the object's Events include want (reason →
// count), exactly.
func waitEvents(t testing.TB, ns, kind, name string, want map[string]int) {
	t.Helper()
	eventually(t, waitTimeout, fmt.Sprintf("Events of %s %s: %v", kind, name, want), func() (bool, string) {
		got := countEvents(t, ns, kind, name)
		for reason, n := range want {
			if got[reason] != n {
				return false, fmt.Sprint(got)
			}
		}
		return true, ""
	})
}

// metricValue reads a metric of the operator's registry (what /metrics
// serves): the series whose labels include labels; a counter's or gauge's
// value, a histogram's sample count.
func metricValue(t testing.TB, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if !hasLabels(m, labels) {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount()), true
			}
		}
	}
	return 0, false
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
			n++
		}
	}
	return n == len(want)
}

package controllers

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	mqttv1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
)

// brokerWith is a Broker whose Ready and Available conditions changed at
// the given minutes (0: absent).
func brokerWith(ready metav1.ConditionStatus, reason string, readyAt int, available metav1.ConditionStatus, availableAt int) *mqttv1alpha1.Broker {
	at := func(m int) metav1.Time { return metav1.NewTime(time.Date(2026, 1, 1, 0, m, 0, 0, time.UTC)) }
	b := &mqttv1alpha1.Broker{}
	if readyAt > 0 {
		b.Status.Conditions = append(b.Status.Conditions, metav1.Condition{Type: mqttv1alpha1.ConditionReady, Status: ready, Reason: reason, LastTransitionTime: at(readyAt)})
	}
	if availableAt > 0 {
		b.Status.Conditions = append(b.Status.Conditions, metav1.Condition{Type: mqttv1alpha1.ConditionAvailable, Status: available, Reason: "x", LastTransitionTime: at(availableAt)})
	}
	return b
}

func TestReadyTransition(t *testing.T) {
	const (
		T = metav1.ConditionTrue
		F = metav1.ConditionFalse
	)
	cases := []struct {
		name       string
		old, new   *mqttv1alpha1.Broker
		wantReason string // "" for no Event
		wantType   string
	}{
		{"first report, not ready", brokerWith("", "", 0, "", 0), brokerWith(F, "PodsNotReady", 1, F, 1), "PodsNotReady", corev1.EventTypeNormal},
		{"unchanged", brokerWith(F, "PodsNotReady", 1, F, 1), brokerWith(F, "PodsNotReady", 1, F, 1), "", ""},
		{"pods not starting", brokerWith(F, "PodsNotReady", 1, F, 1), brokerWith(F, "PodsNotStarting", 1, F, 1), "PodsNotStarting", corev1.EventTypeWarning},
		{"deadline", brokerWith(F, "PodsNotStarting", 1, F, 1), brokerWith(F, "ProgressDeadlineExceeded", 1, F, 1), "ProgressDeadlineExceeded", corev1.EventTypeWarning},
		{"became ready", brokerWith(F, "PodsNotReady", 1, F, 1), brokerWith(T, "Reconciled", 2, T, 2), "Ready", corev1.EventTypeNormal},
		{"ready after first push pending", brokerWith(F, "Pending", 1, T, 2), brokerWith(T, "Reconciled", 3, T, 2), "Ready", corev1.EventTypeNormal},
		{"routine rollout starts", brokerWith(T, "Reconciled", 2, T, 1), brokerWith(F, "Pending", 3, T, 1), "", ""},
		{"routine rollout ends", brokerWith(F, "Pending", 3, T, 1), brokerWith(T, "Reconciled", 4, T, 1), "", ""},
		{"push failed: auth events say it", brokerWith(T, "Reconciled", 2, T, 1), brokerWith(F, "PushFailed", 3, T, 1), "", ""},
		{"reconcile failed", brokerWith(T, "Reconciled", 2, T, 1), brokerWith(F, "ReconcileFailed", 3, T, 1), "ReconcileFailed", corev1.EventTypeWarning},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			typ, reason, _, ok := readyTransition(tc.old, tc.new)
			if ok != (tc.wantReason != "") || reason != tc.wantReason || typ != tc.wantType {
				t.Errorf("readyTransition = %q %q (event %v), want %q %q", typ, reason, ok, tc.wantType, tc.wantReason)
			}
		})
	}
}

func TestProgressExceeded(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	b := &mqttv1alpha1.Broker{}
	short := &mqttv1alpha1.Broker{Spec: mqttv1alpha1.BrokerSpec{ProgressDeadlineSeconds: ptr.To[int32](60)}}
	cases := []struct {
		name     string
		b        *mqttv1alpha1.Broker
		p        progress
		wantMsg  string
		wantNext time.Duration
	}{
		{"nothing stuck", b, progress{}, "", 0},
		{"pod stuck within the default", b, progress{stuck: "pod x: y", stuckSince: now.Add(-time.Minute)}, "", 9 * time.Minute},
		{"pod stuck past the default", b, progress{stuck: "pod x: y", stuckSince: now.Add(-11 * time.Minute)}, "not started for more than 10m0s: pod x: y", 0},
		{"pushes failing past a short deadline", short, progress{pushFailingSince: now.Add(-2 * time.Minute)}, "auth pushes failing for more than 1m0s", 0},
		{"both within, the sooner counts", short, progress{stuck: "p", stuckSince: now.Add(-10 * time.Second), pushFailingSince: now.Add(-50 * time.Second)}, "", 10 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			msg, next := tc.p.exceeded(tc.b, now)
			if msg != tc.wantMsg || next != tc.wantNext {
				t.Errorf("exceeded = %q, %v; want %q, %v", msg, next, tc.wantMsg, tc.wantNext)
			}
		})
	}
}

package resource

import (
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
)

// PodDisruptionBudget limits voluntary disruptions of the broker pods. It is
// nil when spec.podDisruptionBudget.enabled is false (the reconciler then
// deletes any it made). Absent settings mean maxUnavailable 1: with one
// replica a drain may evict the broker, which beats blocking the drain.
// Unhealthy pods may always be evicted, so a crash-looping broker never
// holds up a node drain.
func PodDisruptionBudget(b *v1alpha1.Broker) *policyv1.PodDisruptionBudget {
	maxUnavailable := intstr.FromInt32(1)
	if p := b.Spec.PodDisruptionBudget; p != nil {
		if p.Enabled != nil && !*p.Enabled {
			return nil
		}
		if p.MaxUnavailable != nil {
			maxUnavailable = *p.MaxUnavailable
		}
	}
	return &policyv1.PodDisruptionBudget{
		TypeMeta: metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      PodDisruptionBudgetName(b),
			Namespace: b.Namespace,
			Labels:    ObjectLabels(b),
		},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable:             &maxUnavailable,
			Selector:                   &metav1.LabelSelector{MatchLabels: Labels(b)},
			UnhealthyPodEvictionPolicy: ptr.To(policyv1.AlwaysAllow),
		},
	}
}

package controllers

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	mqttv1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
	"github.com/fleetmq/fleetmq/internal/resource"
)

// smAbsentTTL is how long a missing ServiceMonitor CRD is believed missing.
const smAbsentTTL = time.Minute

// reconcileServiceMonitor applies the ServiceMonitor when spec asks for it
// and the CRD is installed, and deletes the one it owns when spec no longer
// does (it would go on scraping with the admin token).
func (r *BrokerReconciler) reconcileServiceMonitor(ctx context.Context, b *mqttv1alpha1.Broker) error {
	sm := resource.ServiceMonitor(b)
	installed := r.serviceMonitorCRDPresent(sm != nil)
	switch {
	case sm != nil && installed:
		return apply(ctx, r.Client, r.Scheme, b, sm)
	case sm != nil:
		r.event(b, corev1.EventTypeWarning, "ServiceMonitorUnavailable",
			"spec.monitoring.serviceMonitor is enabled but the monitoring.coreos.com/v1 ServiceMonitor CRD is not installed")
	case installed:
		old := &unstructured.Unstructured{}
		old.SetGroupVersionKind(resource.ServiceMonitorGVK)
		old.SetNamespace(b.Namespace)
		old.SetName(resource.ServiceMonitorName(b))
		return r.deleteIfOwned(ctx, b, old)
	}
	return nil
}

// serviceMonitorCRDPresent asks the REST mapper, which calls discovery for
// a group it does not know; when only a cleanup depends on the answer
// (wanted false), a recent "absent" is trusted instead.
func (r *BrokerReconciler) serviceMonitorCRDPresent(wanted bool) bool {
	now := time.Now().UnixNano()
	if !wanted && now < r.smAbsentUntil.Load() {
		return false
	}
	if r.serviceMonitorInstalled() {
		r.smAbsentUntil.Store(0)
		return true
	}
	r.smAbsentUntil.Store(now + int64(smAbsentTTL))
	return false
}

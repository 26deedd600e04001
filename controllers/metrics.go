package controllers

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	mqttv1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
	"github.com/fleetmq/fleetmq/internal/authsync"
)

// The operator's own metrics, on controller-runtime's registry (served on
// the manager's /metrics next to controller_runtime_reconcile_*). Per-Broker
// series carry namespace and broker labels and are deleted with the Broker;
// per-push series have no Broker label, so their cardinality does not grow
// with the fleet.
var (
	authPushes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fleetmq_operator_auth_pushes_total",
		Help: "Auth bundle pushes (PUT /v1/auth) to broker pods, by result: applied, refused (the pod holds a newer or conflicting revision) or failed.",
	}, []string{"result"})
	authPushDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "fleetmq_operator_auth_push_duration_seconds",
		Help:    "Time of one auth bundle push (PUT /v1/auth) to one broker pod.",
		Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
	})
	brokerPushFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fleetmq_operator_broker_auth_push_failures_total",
		Help: "Reconciles of a Broker in which some ready pod could not be brought to the desired auth revision (unreachable, refused or failed push).",
	}, []string{"namespace", "broker"})
	brokerDesiredRevision = brokerGauge("fleetmq_operator_broker_auth_revision_desired",
		"The auth bundle revision the operator compiled for a Broker.")
	brokerAppliedRevision = brokerGauge("fleetmq_operator_broker_auth_revision_applied",
		"The auth bundle revision every ready pod of a Broker has applied (the lowest one reported; 0 with no ready pod).")
	brokerPodsReady = brokerGauge("fleetmq_operator_broker_pods_ready", "Ready pods of a Broker.")
)

func brokerGauge(name, help string) *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, []string{"namespace", "broker"})
}

func init() {
	metrics.Registry.MustRegister(authPushes, authPushDuration, brokerPushFailures,
		brokerDesiredRevision, brokerAppliedRevision, brokerPodsReady)
}

// observeBroker records what one reconcile of b learned.
func observeBroker(b *mqttv1alpha1.Broker, st *brokerState) {
	ns, name := b.Namespace, b.Name
	brokerPodsReady.WithLabelValues(ns, name).Set(float64(b.Status.ReadyReplicas))
	if st.auth != nil {
		brokerDesiredRevision.WithLabelValues(ns, name).Set(float64(st.auth.Bundle.Revision))
	}
	if st.pods != nil {
		applied := int64(-1)
		for _, p := range st.pods {
			if p.Ready && (applied < 0 || p.AppliedRevision < applied) {
				applied = p.AppliedRevision
			}
		}
		brokerAppliedRevision.WithLabelValues(ns, name).Set(float64(max(applied, 0)))
	}
	if st.pushErr != nil {
		brokerPushFailures.WithLabelValues(ns, name).Inc()
	}
}

// forgetBroker deletes a deleted Broker's series.
func forgetBroker(key types.NamespacedName) {
	for _, v := range []*prometheus.MetricVec{brokerPushFailures.MetricVec, brokerDesiredRevision.MetricVec, brokerAppliedRevision.MetricVec, brokerPodsReady.MetricVec} {
		v.DeleteLabelValues(key.Namespace, key.Name)
	}
}

// instrumentedClient counts and times the pushes of an admin API client.
type instrumentedClient struct {
	authsync.Client
}

func (c instrumentedClient) PutAuth(ctx context.Context, addr string, bundle []byte) (authsync.Applied, error) {
	start := time.Now()
	got, err := c.Client.PutAuth(ctx, addr, bundle)
	authPushDuration.Observe(time.Since(start).Seconds())
	var stale *authsync.StaleError
	switch {
	case err == nil:
		authPushes.WithLabelValues("applied").Inc()
	case errors.As(err, &stale):
		authPushes.WithLabelValues("refused").Inc()
	default:
		authPushes.WithLabelValues("failed").Inc()
	}
	return got, err
}

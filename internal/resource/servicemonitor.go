package resource

import (
	"maps"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	v1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
)

// ServiceMonitorGVK is the Prometheus Operator's ServiceMonitor. It is built
// unstructured so the operator needs neither the Prometheus Operator's Go
// module nor its CRD to be installed (the reconciler skips it, with a
// condition, when the CRD is absent).
var ServiceMonitorGVK = schema.GroupVersionKind{Group: "monitoring.coreos.com", Version: "v1", Kind: "ServiceMonitor"}

// DefaultScrapeInterval is used when spec.monitoring.serviceMonitor.interval
// is empty.
const DefaultScrapeInterval = "30s"

// ServiceMonitor scrapes MetricsPath on the admin port of every broker pod
// through the headless Service, over HTTPS verified against the Broker's
// CA by the headless Service's name, with the read-only metrics token: the
// scraper never holds the admin token, and both come from the metrics
// Secret, which holds no private key. It is nil
// unless spec.monitoring.serviceMonitor.enabled. Its labels are the
// operator's plus spec.monitoring.serviceMonitor.labels (for a Prometheus
// serviceMonitorSelector); the operator's win.
func ServiceMonitor(b *v1alpha1.Broker) *unstructured.Unstructured {
	sm := b.Spec.Monitoring.ServiceMonitor
	if sm == nil || !sm.Enabled {
		return nil
	}
	interval := sm.Interval
	if interval == "" {
		interval = DefaultScrapeInterval
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"spec": map[string]any{
			"selector": map[string]any{
				"matchLabels": stringMap(HeadlessService(b).Labels),
			},
			"endpoints": []any{
				map[string]any{
					"port":     PortAdmin,
					"path":     MetricsPath,
					"scheme":   "https",
					"interval": interval,
					"tlsConfig": map[string]any{
						"ca": map[string]any{"secret": map[string]any{
							"name": MetricsSecretName(b),
							"key":  TLSCAKey,
						}},
						"serverName": AdminServerName(b),
					},
					// authorization, not the deprecated bearerTokenSecret.
					"authorization": map[string]any{
						"type": "Bearer",
						"credentials": map[string]any{
							"name": MetricsSecretName(b),
							"key":  MetricsTokenKey,
						},
					},
				},
			},
		},
	}}
	u.SetGroupVersionKind(ServiceMonitorGVK)
	u.SetName(ServiceMonitorName(b))
	u.SetNamespace(b.Namespace)
	u.SetLabels(merge(sm.Labels, ObjectLabels(b)))
	return u
}

// stringMap converts labels to the JSON-compatible form unstructured
// objects hold.
func stringMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range maps.All(m) {
		out[k] = v
	}
	return out
}

package resource

import (
	"maps"
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
)

func TestPodDisruptionBudget(t *testing.T) {
	tests := []struct {
		name   string
		broker *v1alpha1.Broker
		want   *intstr.IntOrString // nil: no PodDisruptionBudget
	}{
		{"absent: maxUnavailable 1", newBroker(), ptr.To(intstr.FromInt32(1))},
		{"enabled, no maxUnavailable", newBroker(func(b *v1alpha1.Broker) {
			b.Spec.PodDisruptionBudget = &v1alpha1.PodDisruptionBudgetSpec{Enabled: ptr.To(true)}
		}), ptr.To(intstr.FromInt32(1))},
		{"enabled unset, maxUnavailable 0", newBroker(func(b *v1alpha1.Broker) {
			b.Spec.PodDisruptionBudget = &v1alpha1.PodDisruptionBudgetSpec{MaxUnavailable: ptr.To(intstr.FromInt32(0))}
		}), ptr.To(intstr.FromInt32(0))},
		{"percentage", newBroker(func(b *v1alpha1.Broker) {
			b.Spec.PodDisruptionBudget = &v1alpha1.PodDisruptionBudgetSpec{MaxUnavailable: ptr.To(intstr.FromString("50%"))}
		}), ptr.To(intstr.FromString("50%"))},
		{"disabled", newBroker(func(b *v1alpha1.Broker) {
			b.Spec.PodDisruptionBudget = &v1alpha1.PodDisruptionBudgetSpec{Enabled: ptr.To(false), MaxUnavailable: ptr.To(intstr.FromInt32(0))}
		}), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pdb := PodDisruptionBudget(tt.broker)
			if tt.want == nil {
				if pdb != nil {
					t.Errorf("PodDisruptionBudget = %+v, want nil", pdb)
				}
				return
			}
			if pdb == nil {
				t.Fatal("PodDisruptionBudget = nil, want one")
			}
			if pdb.Name != "acme" || pdb.Namespace != "tenant-a" {
				t.Errorf("PodDisruptionBudget is %s/%s, want tenant-a/acme", pdb.Namespace, pdb.Name)
			}
			if !reflect.DeepEqual(pdb.Spec.MaxUnavailable, tt.want) {
				t.Errorf("maxUnavailable = %v, want %v", pdb.Spec.MaxUnavailable, tt.want)
			}
			if pdb.Spec.MinAvailable != nil {
				t.Errorf("minAvailable = %v, want unset", pdb.Spec.MinAvailable)
			}
		})
	}
}

func TestServiceMonitor(t *testing.T) {
	tests := []struct {
		name         string
		spec         *v1alpha1.ServiceMonitorSpec
		wantNil      bool
		wantInterval string
	}{
		{name: "absent", spec: nil, wantNil: true},
		{name: "disabled", spec: &v1alpha1.ServiceMonitorSpec{Interval: "10s"}, wantNil: true},
		{name: "enabled, default interval", spec: &v1alpha1.ServiceMonitorSpec{Enabled: true}, wantInterval: "30s"},
		{name: "enabled, interval and labels", spec: &v1alpha1.ServiceMonitorSpec{
			Enabled: true, Interval: "15s", Labels: map[string]string{"release": "prom", LabelBroker: "other"},
		}, wantInterval: "15s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBroker(func(b *v1alpha1.Broker) { b.Spec.Monitoring.ServiceMonitor = tt.spec })
			sm := ServiceMonitor(b)
			if tt.wantNil {
				if sm != nil {
					t.Errorf("ServiceMonitor = %v, want nil", sm.Object)
				}
				return
			}
			if sm == nil {
				t.Fatal("ServiceMonitor = nil, want one")
			}
			if gvk := sm.GroupVersionKind(); gvk != ServiceMonitorGVK || gvk.String() != "monitoring.coreos.com/v1, Kind=ServiceMonitor" {
				t.Errorf("GVK = %v, want monitoring.coreos.com/v1 ServiceMonitor", gvk)
			}
			if sm.GetName() != "acme" || sm.GetNamespace() != "tenant-a" {
				t.Errorf("ServiceMonitor is %s/%s, want tenant-a/acme", sm.GetNamespace(), sm.GetName())
			}
			labels := sm.GetLabels()
			if labels[LabelBroker] != "acme" {
				t.Errorf("label %s = %q, want acme (ours win)", LabelBroker, labels[LabelBroker])
			}
			for k, v := range tt.spec.Labels {
				if k != LabelBroker && labels[k] != v {
					t.Errorf("label %s = %q, want %q", k, labels[k], v)
				}
			}

			sel, _, err := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
			if err != nil {
				t.Fatalf("selector: %v", err)
			}
			if want := HeadlessService(b).Labels; !maps.Equal(sel, want) {
				t.Errorf("selector = %v, want the headless Service's labels %v", sel, want)
			}
			eps, _, err := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
			if err != nil || len(eps) != 1 {
				t.Fatalf("endpoints = %v (%v), want one", eps, err)
			}
			want := map[string]any{
				"port": "admin", "path": "/metrics", "scheme": "https", "interval": tt.wantInterval,
				// The read-only token and the CA, both from the metrics
				// Secret: never the admin token.
				"authorization": map[string]any{
					"type":        "Bearer",
					"credentials": map[string]any{"name": "acme-metrics", "key": "token"},
				},
				"tlsConfig": map[string]any{
					"ca":         map[string]any{"secret": map[string]any{"name": "acme-metrics", "key": "ca.crt"}},
					"serverName": "acme-headless.tenant-a.svc",
				},
			}
			if !reflect.DeepEqual(eps[0], want) {
				t.Errorf("endpoint = %v, want %v", eps[0], want)
			}
			// The object must survive a deep copy (JSON-compatible values
			// only), as the client does before sending it.
			if cp := sm.DeepCopy(); !reflect.DeepEqual(cp.Object, sm.Object) {
				t.Errorf("deep copy differs: %v", cp.Object)
			}
		})
	}
}

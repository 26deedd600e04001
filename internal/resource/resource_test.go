package resource

import (
	"maps"
	"testing"

	v1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
)

func TestLabels(t *testing.T) {
	b := newBroker()
	want := map[string]string{
		LabelName:      "fleetmq",
		LabelInstance:  "acme",
		LabelComponent: "broker",
	}
	if got := Labels(b); !maps.Equal(got, want) {
		t.Errorf("Labels = %v, want %v", got, want)
	}

	// The selector is immutable: nothing in the spec may change it.
	changed := newBroker(func(b *v1alpha1.Broker) {
		b.Spec.Pod.Labels = map[string]string{"team": "iot", LabelInstance: "other"}
		b.Spec.Image = "example/broker:2"
		b.Spec.Persistence = &v1alpha1.PersistenceSpec{}
		withTLS(b)
	})
	sts := StatefulSet(changed, Options{}, "h")
	if got := sts.Spec.Selector.MatchLabels; !maps.Equal(got, want) {
		t.Errorf("StatefulSet selector = %v, want %v", got, want)
	}
	pdb := PodDisruptionBudget(changed)
	if got := pdb.Spec.Selector.MatchLabels; !maps.Equal(got, want) {
		t.Errorf("PodDisruptionBudget selector = %v, want %v", got, want)
	}
	for _, svc := range []string{"client", "headless"} {
		s := Service(changed)
		if svc == "headless" {
			s = HeadlessService(changed)
		}
		if got := s.Spec.Selector; !maps.Equal(got, want) {
			t.Errorf("%s Service selector = %v, want %v", svc, got, want)
		}
	}

	// The pod template matches the selector, and the operator's labels win
	// over spec.pod.labels.
	pl := sts.Spec.Template.Labels
	for k, v := range want {
		if pl[k] != v {
			t.Errorf("pod label %s = %q, want %q", k, pl[k], v)
		}
	}
	if pl["team"] != "iot" {
		t.Errorf("pod label team = %q, want %q (from spec.pod.labels)", pl["team"], "iot")
	}
	if pl[LabelBroker] != "acme" || pl[LabelManagedBy] != FieldManager {
		t.Errorf("pod labels %v: want %s=acme and %s=%s", pl, LabelBroker, LabelManagedBy, FieldManager)
	}
}

func TestNames(t *testing.T) {
	b := newBroker()
	tests := []struct {
		name, got, want string
	}{
		{"ConfigMapName", ConfigMapName(b), "acme-config"},
		{"AdminSecretName", AdminSecretName(b), "acme-admin"},
		{"AuthSecretName", AuthSecretName(b), "acme-auth"},
		{"ServiceName", ServiceName(b), "acme"},
		{"HeadlessServiceName", HeadlessServiceName(b), "acme-headless"},
		{"StatefulSetName", StatefulSetName(b), "acme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}

// TestTypeMeta: server-side apply needs apiVersion and kind on every object.
func TestTypeMeta(t *testing.T) {
	b := newBroker(func(b *v1alpha1.Broker) {
		b.Spec.Monitoring.ServiceMonitor = &v1alpha1.ServiceMonitorSpec{Enabled: true}
	})
	u := &v1alpha1.User{}
	u.Name, u.Namespace = "sensor-7", "tenant-a"
	cm, err := ConfigMap(b)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, apiVersion, kind, wantAPIVersion, wantKind string
	}{
		{"ConfigMap", cm.APIVersion, cm.Kind, "v1", "ConfigMap"},
		{"StatefulSet", StatefulSet(b, Options{}, "").APIVersion, StatefulSet(b, Options{}, "").Kind, "apps/v1", "StatefulSet"},
		{"Service", Service(b).APIVersion, Service(b).Kind, "v1", "Service"},
		{"HeadlessService", HeadlessService(b).APIVersion, HeadlessService(b).Kind, "v1", "Service"},
		{"PodDisruptionBudget", PodDisruptionBudget(b).APIVersion, PodDisruptionBudget(b).Kind, "policy/v1", "PodDisruptionBudget"},
		{"ServiceMonitor", ServiceMonitor(b).GetAPIVersion(), ServiceMonitor(b).GetKind(), "monitoring.coreos.com/v1", "ServiceMonitor"},
		{"AdminSecret", AdminSecret(b, "t").APIVersion, AdminSecret(b, "t").Kind, "v1", "Secret"},
		{"AuthSecret", AuthSecret(b, nil, nil).APIVersion, AuthSecret(b, nil, nil).Kind, "v1", "Secret"},
		{"UserCredentialsSecret", UserCredentialsSecret(u, b, "u", "p").APIVersion, UserCredentialsSecret(u, b, "u", "p").Kind, "v1", "Secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.apiVersion != tt.wantAPIVersion || tt.kind != tt.wantKind {
				t.Errorf("got %s %s, want %s %s", tt.apiVersion, tt.kind, tt.wantAPIVersion, tt.wantKind)
			}
		})
	}
}

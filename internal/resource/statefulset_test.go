package resource

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
)

func brokerContainerOf(t *testing.T, b *v1alpha1.Broker, o Options) corev1.Container {
	t.Helper()
	cs := StatefulSet(b, o, "hash").Spec.Template.Spec.Containers
	if len(cs) != 1 || cs[0].Name != ContainerName {
		t.Fatalf("containers = %v, want one named %q", cs, ContainerName)
	}
	return cs[0]
}

func volumeNamed(vs []corev1.Volume, name string) (corev1.Volume, bool) {
	i := slices.IndexFunc(vs, func(v corev1.Volume) bool { return v.Name == name })
	if i < 0 {
		return corev1.Volume{}, false
	}
	return vs[i], true
}

func mountNamed(ms []corev1.VolumeMount, name string) (corev1.VolumeMount, bool) {
	i := slices.IndexFunc(ms, func(m corev1.VolumeMount) bool { return m.Name == name })
	if i < 0 {
		return corev1.VolumeMount{}, false
	}
	return ms[i], true
}

func portNames(ps []corev1.ContainerPort) map[string]int32 {
	out := map[string]int32{}
	for _, p := range ps {
		out[p.Name] = p.ContainerPort
	}
	return out
}

func TestStatefulSetDefaults(t *testing.T) {
	b := newBroker()
	sts := StatefulSet(b, Options{DefaultImage: "ghcr.io/fleetmq/broker:v1"}, "abc")
	if sts.Name != "acme" || sts.Namespace != "tenant-a" {
		t.Errorf("StatefulSet is %s/%s, want tenant-a/acme", sts.Namespace, sts.Name)
	}
	if got := ptr.Deref(sts.Spec.Replicas, -1); got != 1 {
		t.Errorf("replicas = %d, want 1", got)
	}
	if got := sts.Spec.ServiceName; got != "acme-headless" {
		t.Errorf("serviceName = %q, want acme-headless", got)
	}
	if got := sts.Spec.PodManagementPolicy; got != "Parallel" {
		t.Errorf("podManagementPolicy = %q, want Parallel", got)
	}
	if got := sts.Spec.UpdateStrategy.Type; got != "RollingUpdate" {
		t.Errorf("updateStrategy = %q, want RollingUpdate", got)
	}
	if got := sts.Spec.Template.Annotations[AnnotationConfigHash]; got != "abc" {
		t.Errorf("config hash annotation = %q, want abc", got)
	}
	ps := sts.Spec.Template.Spec
	if got := ptr.Deref(ps.TerminationGracePeriodSeconds, -1); got != 30 {
		t.Errorf("terminationGracePeriodSeconds = %d, want 30", got)
	}
	if ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
		t.Errorf("automountServiceAccountToken = %v, want false", ps.AutomountServiceAccountToken)
	}
	if ps.EnableServiceLinks == nil || *ps.EnableServiceLinks {
		t.Errorf("enableServiceLinks = %v, want false", ps.EnableServiceLinks)
	}

	c := brokerContainerOf(t, b, Options{DefaultImage: "ghcr.io/fleetmq/broker:v1"})
	if c.Image != "ghcr.io/fleetmq/broker:v1" {
		t.Errorf("image = %q, want the default image", c.Image)
	}
	if want := []string{"--config", "/etc/fleetmq/config/broker.yaml"}; !slices.Equal(c.Args, want) {
		t.Errorf("args = %q, want %q", c.Args, want)
	}
	if got, want := portNames(c.Ports), map[string]int32{"mqtt": 1883, "admin": 8081}; !maps.Equal(got, want) {
		t.Errorf("ports = %v, want %v", got, want)
	}
	for _, p := range c.Ports {
		if p.Protocol != corev1.ProtocolTCP {
			t.Errorf("port %s protocol = %q, want TCP (server-side apply keys ports by port and protocol)", p.Name, p.Protocol)
		}
	}
	probes := []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{
		{"readiness", c.ReadinessProbe, "/readyz"},
		{"liveness", c.LivenessProbe, "/healthz"},
		{"startup", c.StartupProbe, "/healthz"},
	}
	for _, p := range probes {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s probe = %v, want HTTP GET", p.name, p.probe)
			continue
		}
		if g := p.probe.HTTPGet; g.Path != p.path || g.Port.String() != "admin" {
			t.Errorf("%s probe GET %s on %s, want %s on admin", p.name, g.Path, g.Port.String(), p.path)
		}
	}
	if c.Env != nil {
		t.Errorf("env = %v, want none without a memory limit", c.Env)
	}
}

func TestStatefulSetSpec(t *testing.T) {
	b := newBroker(func(b *v1alpha1.Broker) {
		b.Spec.Image = "example/broker:2"
		b.Spec.Replicas = ptr.To[int32](1)
		b.Spec.Resources = corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1000Mi")},
		}
		b.Spec.Pod = v1alpha1.PodOverrides{
			Labels:            map[string]string{"team": "iot", LabelComponent: "mine"},
			Annotations:       map[string]string{"note": "x", AnnotationConfigHash: "user"},
			NodeSelector:      map[string]string{"pool": "mqtt"},
			Tolerations:       []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpExists}},
			Affinity:          &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{}},
			PriorityClassName: "high",
			TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
				MaxSkew: 1, TopologyKey: "zone", WhenUnsatisfiable: corev1.ScheduleAnyway,
			}},
		}
	})
	sts := StatefulSet(b, Options{DefaultImage: "default"}, "abc")
	tpl := sts.Spec.Template
	c := tpl.Spec.Containers[0]
	if c.Image != "example/broker:2" {
		t.Errorf("image = %q, want spec.image", c.Image)
	}
	if !reflect.DeepEqual(c.Resources, b.Spec.Resources) {
		t.Errorf("resources = %v, want %v", c.Resources, b.Spec.Resources)
	}
	// 90% of 1000Mi.
	if want := []corev1.EnvVar{{Name: "GOMEMLIMIT", Value: "943718400"}}; !reflect.DeepEqual(c.Env, want) {
		t.Errorf("env = %v, want %v", c.Env, want)
	}
	if got := tpl.Labels; got[LabelComponent] != "broker" || got["team"] != "iot" {
		t.Errorf("pod labels = %v, want component=broker (ours win) and team=iot", got)
	}
	if got := tpl.Annotations; got[AnnotationConfigHash] != "abc" || got["note"] != "x" {
		t.Errorf("pod annotations = %v, want config hash abc (ours win) and note=x", got)
	}
	ps := tpl.Spec
	if !maps.Equal(ps.NodeSelector, b.Spec.Pod.NodeSelector) ||
		!reflect.DeepEqual(ps.Tolerations, b.Spec.Pod.Tolerations) ||
		!reflect.DeepEqual(ps.Affinity, b.Spec.Pod.Affinity) ||
		!reflect.DeepEqual(ps.TopologySpreadConstraints, b.Spec.Pod.TopologySpreadConstraints) ||
		ps.PriorityClassName != "high" {
		t.Errorf("scheduling = %+v, want spec.pod's", ps)
	}

	// The built object does not alias the Broker.
	ps.Tolerations[0].Key = "changed"
	tpl.Labels["team"] = "changed"
	if b.Spec.Pod.Tolerations[0].Key != "dedicated" || b.Spec.Pod.Labels["team"] != "iot" {
		t.Errorf("changing the StatefulSet changed the Broker: %+v", b.Spec.Pod)
	}
}

func TestStatefulSetVolumes(t *testing.T) {
	t.Run("auth projects the manifest and 16 optional shard slots, never state", func(t *testing.T) {
		sts := StatefulSet(newBroker(), Options{}, "h")
		v, ok := volumeNamed(sts.Spec.Template.Spec.Volumes, VolumeAuth)
		if !ok || v.Projected == nil {
			t.Fatalf("auth volume = %+v, want a projected volume", v)
		}
		src := v.Projected.Sources
		if len(src) != 17 {
			t.Fatalf("auth volume has %d sources, want the manifest and 16 slots", len(src))
		}
		manifest := src[0].Secret
		if manifest == nil || manifest.Name != "acme-auth" || manifest.Optional != nil ||
			!reflect.DeepEqual(manifest.Items, []corev1.KeyToPath{{Key: "manifest.json", Path: "manifest.json"}}) {
			t.Errorf("auth source 0 = %+v, want acme-auth's manifest.json only (state-manifest.json must never be mounted)", src[0])
		}
		for i, s := range src[1:] {
			want := &corev1.SecretProjection{
				LocalObjectReference: corev1.LocalObjectReference{Name: fmt.Sprintf("acme-auth-%d", i)},
				Items:                []corev1.KeyToPath{{Key: "shard", Path: fmt.Sprintf("shard-%d", i)}},
				Optional:             ptr.To(true),
			}
			if !reflect.DeepEqual(s.Secret, want) {
				t.Errorf("auth source %d = %+v, want %+v", i+1, s.Secret, want)
			}
		}
		m, ok := mountNamed(sts.Spec.Template.Spec.Containers[0].VolumeMounts, VolumeAuth)
		if !ok || m.MountPath != AuthDir || !m.ReadOnly || m.SubPath != "" {
			// A subPath mount would never see the Secret's updates.
			t.Errorf("auth mount = %+v, want read-only %s without subPath", m, AuthDir)
		}
	})
	t.Run("admin and config", func(t *testing.T) {
		vs := StatefulSet(newBroker(), Options{}, "h").Spec.Template.Spec.Volumes
		admin, _ := volumeNamed(vs, VolumeAdmin)
		if admin.Secret == nil || admin.Secret.SecretName != "acme-admin" ||
			!reflect.DeepEqual(admin.Secret.Items, []corev1.KeyToPath{{Key: "token", Path: "token"}}) {
			t.Errorf("admin volume = %+v, want Secret acme-admin, item token", admin)
		}
		cfg, _ := volumeNamed(vs, VolumeConfig)
		if cfg.ConfigMap == nil || cfg.ConfigMap.Name != "acme-config" {
			t.Errorf("config volume = %+v, want ConfigMap acme-config", cfg)
		}
	})

	tests := []struct {
		name      string
		broker    *v1alpha1.Broker
		wantClaim *corev1.PersistentVolumeClaimSpec
	}{
		{name: "no persistence: emptyDir", broker: newBroker()},
		{
			name: "persistence with defaults",
			broker: newBroker(func(b *v1alpha1.Broker) {
				b.Spec.Persistence = &v1alpha1.PersistenceSpec{}
			}),
			wantClaim: &corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources: corev1.VolumeResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
				},
			},
		},
		{
			name: "persistence with class and size",
			broker: newBroker(func(b *v1alpha1.Broker) {
				b.Spec.Persistence = &v1alpha1.PersistenceSpec{StorageClassName: ptr.To("fast"), Size: resource.MustParse("10Gi")}
			}),
			wantClaim: &corev1.PersistentVolumeClaimSpec{
				AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				StorageClassName: ptr.To("fast"),
				Resources: corev1.VolumeResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")},
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sts := StatefulSet(tt.broker, Options{}, "h")
			m, ok := mountNamed(sts.Spec.Template.Spec.Containers[0].VolumeMounts, VolumeData)
			if !ok || m.MountPath != DataDir || m.ReadOnly {
				t.Errorf("data mount = %+v, want writable %s", m, DataDir)
			}
			v, hasVolume := volumeNamed(sts.Spec.Template.Spec.Volumes, VolumeData)
			if tt.wantClaim == nil {
				if !hasVolume || v.EmptyDir == nil {
					t.Errorf("data volume = %+v, want an emptyDir", v)
				}
				if len(sts.Spec.VolumeClaimTemplates) != 0 {
					t.Errorf("volumeClaimTemplates = %v, want none", sts.Spec.VolumeClaimTemplates)
				}
				return
			}
			if hasVolume {
				t.Errorf("data volume %+v in the pod: want only the claim template", v)
			}
			if len(sts.Spec.VolumeClaimTemplates) != 1 {
				t.Fatalf("volumeClaimTemplates = %v, want one", sts.Spec.VolumeClaimTemplates)
			}
			claim := sts.Spec.VolumeClaimTemplates[0]
			if claim.Name != VolumeData {
				t.Errorf("claim name = %q, want %q", claim.Name, VolumeData)
			}
			if !reflect.DeepEqual(claim.Spec, *tt.wantClaim) {
				t.Errorf("claim spec = %+v, want %+v", claim.Spec, *tt.wantClaim)
			}
		})
	}
}

func TestStatefulSetListeners(t *testing.T) {
	tests := []struct {
		name      string
		broker    *v1alpha1.Broker
		wantPorts map[string]int32
		wantTLS   string // Secret of the tls volume, "" for none
	}{
		{"mqtt only", newBroker(), map[string]int32{"mqtt": 1883, "admin": 8081}, ""},
		{"tls", newBroker(withTLS), map[string]int32{"mqtt": 1883, "mqtts": 8883, "admin": 8081}, "acme-tls"},
		{"websocket", newBroker(withWebSocket), map[string]int32{"mqtt": 1883, "ws": 8080, "admin": 8081}, ""},
		{"custom ports", newBroker(func(b *v1alpha1.Broker) {
			b.Spec.Listeners = v1alpha1.Listeners{
				MQTT:      v1alpha1.MQTTListener{Port: 1884},
				TLS:       &v1alpha1.TLSListener{Port: 8884, SecretName: "certs"},
				WebSocket: &v1alpha1.WebSocketListener{Port: 9001, Path: "/ws"},
			}
		}), map[string]int32{"mqtt": 1884, "mqtts": 8884, "ws": 9001, "admin": 8081}, "certs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sts := StatefulSet(tt.broker, Options{}, "h")
			c := sts.Spec.Template.Spec.Containers[0]
			if got := portNames(c.Ports); !maps.Equal(got, tt.wantPorts) {
				t.Errorf("container ports = %v, want %v", got, tt.wantPorts)
			}
			v, hasVolume := volumeNamed(sts.Spec.Template.Spec.Volumes, VolumeTLS)
			m, hasMount := mountNamed(c.VolumeMounts, VolumeTLS)
			if tt.wantTLS == "" {
				if hasVolume || hasMount {
					t.Errorf("tls volume %+v / mount %+v, want none", v, m)
				}
				return
			}
			if !hasVolume || v.Secret == nil || v.Secret.SecretName != tt.wantTLS {
				t.Errorf("tls volume = %+v, want Secret %s", v, tt.wantTLS)
			}
			if !hasMount || m.MountPath != TLSDir || !m.ReadOnly {
				t.Errorf("tls mount = %+v, want read-only %s", m, TLSDir)
			}
		})
	}
}

func TestStatefulSetSecurityContext(t *testing.T) {
	custom := &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](1000), FSGroup: ptr.To[int64](2000)}
	tests := []struct {
		name   string
		broker *v1alpha1.Broker
		want   *corev1.PodSecurityContext
	}{
		{
			name:   "defaults",
			broker: newBroker(),
			want: &corev1.PodSecurityContext{
				RunAsNonRoot:        ptr.To(true),
				RunAsUser:           ptr.To[int64](65532),
				RunAsGroup:          ptr.To[int64](65532),
				FSGroup:             ptr.To[int64](65532),
				FSGroupChangePolicy: ptr.To(corev1.FSGroupChangeOnRootMismatch),
				SeccompProfile:      &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
		},
		{
			name:   "override replaces the defaults",
			broker: newBroker(func(b *v1alpha1.Broker) { b.Spec.Pod.SecurityContext = custom }),
			want:   custom,
		},
	}
	wantContainer := &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := StatefulSet(tt.broker, Options{}, "h").Spec.Template.Spec
			if !reflect.DeepEqual(ps.SecurityContext, tt.want) {
				t.Errorf("pod securityContext = %+v, want %+v", ps.SecurityContext, tt.want)
			}
			if got := ps.Containers[0].SecurityContext; !reflect.DeepEqual(got, wantContainer) {
				t.Errorf("container securityContext = %+v, want %+v", got, wantContainer)
			}
		})
	}
}

// TestStatefulSetDeterministic: the same Broker gives the same object, so a
// re-apply is a no-op.
func TestStatefulSetDeterministic(t *testing.T) {
	b := newBroker(withTLS, withWebSocket, func(b *v1alpha1.Broker) {
		b.Spec.Pod.Labels = map[string]string{"a": "1", "b": "2", "c": "3"}
		b.Spec.Persistence = &v1alpha1.PersistenceSpec{}
	})
	first := StatefulSet(b, Options{DefaultImage: "img"}, "h")
	for range 20 {
		if got := StatefulSet(b, Options{DefaultImage: "img"}, "h"); !reflect.DeepEqual(got, first) {
			t.Fatalf("StatefulSet differs between calls")
		}
	}
}

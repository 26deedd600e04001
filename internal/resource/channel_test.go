package resource

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
)

func TestChannelSecrets(t *testing.T) {
	b := newBroker()
	if got, want := AdminDNSNames(b), []string{"acme-headless.tenant-a.svc", "*.acme-headless.tenant-a.svc"}; !slices.Equal(got, want) {
		t.Errorf("AdminDNSNames = %v, want %v", got, want)
	}
	ca := CASecret(b, []byte("C"), []byte("K"), nil)
	if ca.Name != "acme-ca" || len(ca.Data) != 2 || string(ca.Data["ca.key"]) != "K" {
		t.Errorf("CA Secret %s data %v, want acme-ca with ca.crt and ca.key", ca.Name, stringData(ca.Data))
	}
	if ca := CASecret(b, []byte("C"), []byte("K"), []byte("O")); string(ca.Data["ca-old.crt"]) != "O" {
		t.Errorf("CA Secret during a rotation: %v, want ca-old.crt", stringData(ca.Data))
	}
	tls := AdminTLSSecret(b, []byte("c"), []byte("k"), []byte("t"))
	if tls.Name != "acme-admin-tls" || tls.Type != corev1.SecretTypeTLS || string(tls.Data["ca.crt"]) != "t" {
		t.Errorf("admin TLS Secret %s type %s data %v", tls.Name, tls.Type, stringData(tls.Data))
	}
	m := MetricsSecret(b, "tok", []byte("t"))
	if m.Name != "acme-metrics" || string(m.Data["token"]) != "tok" || string(m.Data["ca.crt"]) != "t" || len(m.Data) != 2 {
		t.Errorf("metrics Secret %s data %v", m.Name, stringData(m.Data))
	}
	for _, s := range []*corev1.Secret{ca, tls, m} {
		if s.Labels[LabelCredentials] != "true" {
			t.Errorf("Secret %s not labelled for the operator's cache", s.Name)
		}
	}
}

// The pod mounts the serving certificate and the metrics token, only those
// keys, and is probed over HTTPS.
func TestStatefulSetChannelMounts(t *testing.T) {
	sts := StatefulSet(newBroker(), Options{}, "h")
	spec := sts.Spec.Template.Spec
	items := map[string][]string{}
	for _, v := range spec.Volumes {
		if v.Secret == nil {
			continue
		}
		if v.Secret.SecretName == "acme-ca" {
			t.Errorf("volume %s mounts the CA Secret", v.Name)
		}
		for _, it := range v.Secret.Items {
			items[v.Secret.SecretName] = append(items[v.Secret.SecretName], it.Key)
		}
	}
	if got := items["acme-admin-tls"]; !slices.Equal(got, []string{"tls.crt", "tls.key"}) {
		t.Errorf("admin TLS items = %v, want tls.crt, tls.key", got)
	}
	if got := items["acme-metrics"]; !slices.Equal(got, []string{"token"}) {
		t.Errorf("metrics items = %v, want token", got)
	}
	c := spec.Containers[0]
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	if mounts["admin-tls"] != "/etc/fleetmq/admin-tls" || mounts["metrics"] != "/etc/fleetmq/metrics" {
		t.Errorf("mounts = %v", mounts)
	}
	for _, p := range []*corev1.Probe{c.StartupProbe, c.LivenessProbe, c.ReadinessProbe} {
		if p.HTTPGet.Scheme != corev1.URISchemeHTTPS {
			t.Errorf("probe %s over %s, want HTTPS", p.HTTPGet.Path, p.HTTPGet.Scheme)
		}
	}
}

func TestPlainListenerOff(t *testing.T) {
	b := newBroker(withTLS, func(b *v1alpha1.Broker) { b.Spec.Listeners.MQTT.Enabled = ptr.To(false) })
	names := func(ps []corev1.ServicePort) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.Name)
		}
		return out
	}
	if got := names(Service(b).Spec.Ports); !slices.Equal(got, []string{"mqtts"}) {
		t.Errorf("Service ports = %v, want [mqtts]", got)
	}
	if got := names(HeadlessService(b).Spec.Ports); !slices.Equal(got, []string{"mqtts", "admin"}) {
		t.Errorf("headless Service ports = %v, want [mqtts admin]", got)
	}
	var cports []string
	for _, p := range StatefulSet(b, Options{}, "h").Spec.Template.Spec.Containers[0].Ports {
		cports = append(cports, p.Name)
	}
	if !slices.Equal(cports, []string{"mqtts", "admin"}) {
		t.Errorf("container ports = %v, want [mqtts admin]", cports)
	}
	if eps := Endpoints(b); len(eps) != 1 || eps[0].Name != "mqtts" {
		t.Errorf("endpoints = %+v, want mqtts only", eps)
	}
	cfg := BrokerConfig(b)
	if !cfg.Listeners.MQTTDisabled {
		t.Error("config keeps the plain listener")
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("rendered config invalid: %v", err)
	}
}

func TestNetworkPolicy(t *testing.T) {
	monitoring := networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{LabelNamespaceName: "monitoring"}}}
	office := networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: "192.0.2.0/24"}}
	tests := []struct {
		name                    string
		broker                  *v1alpha1.Broker
		operatorNS              string
		nilPolicy               bool
		adminPeers, clientPeers int
		clientPorts             []string
	}{
		{name: "default", broker: newBroker(withTLS, withWebSocket), operatorNS: "fleetmq-system", adminPeers: 1, clientPorts: []string{"mqtt", "mqtts", "ws"}},
		{name: "peers", broker: newBroker(func(b *v1alpha1.Broker) {
			b.Spec.NetworkPolicy.AdminFrom = []networkingv1.NetworkPolicyPeer{monitoring}
			b.Spec.NetworkPolicy.ClientFrom = []networkingv1.NetworkPolicyPeer{office}
		}), operatorNS: "ops", adminPeers: 2, clientPeers: 1, clientPorts: []string{"mqtt"}},
		{name: "disabled", broker: newBroker(func(b *v1alpha1.Broker) { b.Spec.NetworkPolicy.Enabled = ptr.To(false) }), operatorNS: "ops", nilPolicy: true},
		{name: "operator namespace unknown", broker: newBroker(), nilPolicy: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			np := NetworkPolicy(tt.broker, tt.operatorNS)
			if tt.nilPolicy {
				if np != nil {
					t.Fatalf("NetworkPolicy = %+v, want none", np.Spec)
				}
				return
			}
			if np.Name != "acme" || np.Namespace != "tenant-a" || np.Spec.PodSelector.MatchLabels[LabelInstance] != "acme" {
				t.Errorf("NetworkPolicy %s/%s selects %v", np.Namespace, np.Name, np.Spec.PodSelector.MatchLabels)
			}
			if !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) || len(np.Spec.Ingress) != 2 {
				t.Fatalf("policy types %v, %d rules; want Ingress with admin and client rules", np.Spec.PolicyTypes, len(np.Spec.Ingress))
			}
			admin, client := np.Spec.Ingress[0], np.Spec.Ingress[1]
			if len(admin.Ports) != 1 || admin.Ports[0].Port.StrVal != PortAdmin || len(admin.From) != tt.adminPeers ||
				admin.From[0].NamespaceSelector.MatchLabels[LabelNamespaceName] != tt.operatorNS {
				t.Errorf("admin rule %+v: want the admin port from %s and %d peers in all", admin, tt.operatorNS, tt.adminPeers)
			}
			var ports []string
			for _, p := range client.Ports {
				ports = append(ports, p.Port.StrVal)
			}
			if !slices.Equal(ports, tt.clientPorts) || len(client.From) != tt.clientPeers {
				t.Errorf("client rule ports %v from %d peers, want %v from %d", ports, len(client.From), tt.clientPorts, tt.clientPeers)
			}
		})
	}
	// The builder never aliases the Broker's peers.
	b := newBroker(func(b *v1alpha1.Broker) {
		b.Spec.NetworkPolicy.AdminFrom = []networkingv1.NetworkPolicyPeer{monitoring}
	})
	np := NetworkPolicy(b, "ops")
	np.Spec.Ingress[0].From[1].NamespaceSelector.MatchLabels["x"] = "y"
	if _, ok := b.Spec.NetworkPolicy.AdminFrom[0].NamespaceSelector.MatchLabels["x"]; ok {
		t.Error("NetworkPolicy aliases spec.networkPolicy.adminFrom")
	}
}

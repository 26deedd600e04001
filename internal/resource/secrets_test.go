package resource

import (
	"maps"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
)

func stringData(m map[string][]byte) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = string(v)
	}
	return out
}

func TestAdminSecret(t *testing.T) {
	s := AdminSecret(newBroker(), "s3cret")
	if s.Name != "acme-admin" || s.Namespace != "tenant-a" {
		t.Errorf("Secret is %s/%s, want tenant-a/acme-admin", s.Namespace, s.Name)
	}
	if got, want := stringData(s.Data), map[string]string{"token": "s3cret"}; !maps.Equal(got, want) {
		t.Errorf("data = %v, want %v", got, want)
	}
	if s.Labels[LabelBroker] != "acme" {
		t.Errorf("labels = %v, want %s=acme", s.Labels, LabelBroker)
	}
}

// TestUserCredentialsSecret spells the Secret's name and keys out rather
// than through v1alpha1's constants: applications depend on them, so a
// change must fail here.
func TestUserCredentialsSecret(t *testing.T) {
	user := &v1alpha1.User{ObjectMeta: metav1.ObjectMeta{Name: "sensor-7", Namespace: "tenant-a"}}
	// keys: the fixed keys, port (none when empty), uri and more key/value pairs.
	keys := func(port, uri string, more ...string) map[string]string {
		m := map[string]string{"type": "mqtt", "provider": "fleetmq", "username": "dev-7", "password": "pw",
			"host": "acme.tenant-a.svc", "uri": uri}
		if port != "" {
			m["port"] = port
		}
		for i := 0; i+1 < len(more); i += 2 {
			m[more[i]] = more[i+1]
		}
		return m
	}
	tests := []struct {
		name   string
		broker *v1alpha1.Broker
		want   map[string]string
	}{
		{
			name:   "default port, TLS listener",
			broker: newBroker(withTLS),
			want:   keys("1883", "mqtt://acme.tenant-a.svc:1883", "tlsPort", "8883"),
		},
		{
			name: "plain listener off: no port, uri over TLS, the others advertised",
			broker: newBroker(withTLS, func(b *v1alpha1.Broker) {
				b.Spec.Listeners.MQTT.Enabled = ptr.To(false)
				b.Spec.Listeners.TLS.Port = 18883
				b.Spec.Listeners.WebSocket = &v1alpha1.WebSocketListener{Port: 9001, Path: "/ws"}
			}),
			want: keys("", "mqtts://acme.tenant-a.svc:18883", "tlsPort", "18883", "websocketURL", "ws://acme.tenant-a.svc:9001/ws"),
		},
		{
			name:   "custom port",
			broker: newBroker(func(b *v1alpha1.Broker) { b.Spec.Listeners.MQTT.Port = 11883 }),
			want:   keys("11883", "mqtt://acme.tenant-a.svc:11883"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := UserCredentialsSecret(user, tt.broker, "dev-7", "pw")
			if s.Name != "sensor-7-mqtt-credentials" || s.Namespace != "tenant-a" {
				t.Errorf("Secret is %s/%s, want tenant-a/sensor-7-mqtt-credentials", s.Namespace, s.Name)
			}
			if got := stringData(s.Data); !maps.Equal(got, tt.want) {
				t.Errorf("data = %v, want %v", got, tt.want)
			}
			if s.Labels[LabelBroker] != "acme" || s.Labels[LabelCredentials] != "true" {
				t.Errorf("labels = %v, want %s=acme, %s=true", s.Labels, LabelBroker, LabelCredentials)
			}
			// Never selected as a broker pod's or Service's peer.
			if s.Labels[LabelComponent] == "broker" {
				t.Errorf("labels = %v: component must not be broker", s.Labels)
			}
		})
	}
}

// spec.credentialsSecret names the Secret and adds labels and annotations;
// the operator's own labels win.
func TestUserCredentialsSecretTemplate(t *testing.T) {
	user := &v1alpha1.User{ObjectMeta: metav1.ObjectMeta{Name: "sensor-7", Namespace: "tenant-a"}}
	user.Spec.CredentialsSecret = &v1alpha1.CredentialsSecretTemplate{
		Name:        "app-mqtt",
		Labels:      map[string]string{"team": "iot", LabelBroker: "spoofed"},
		Annotations: map[string]string{"reflector/allowed": "true"},
	}
	s := UserCredentialsSecret(user, newBroker(), "dev-7", "pw")
	if s.Name != "app-mqtt" {
		t.Errorf("Secret name = %q, want app-mqtt", s.Name)
	}
	if s.Labels["team"] != "iot" || s.Labels[LabelBroker] != "acme" || s.Labels[LabelCredentials] != "true" {
		t.Errorf("labels = %v, want team=iot and the operator's %s=acme, %s=true", s.Labels, LabelBroker, LabelCredentials)
	}
	if !maps.Equal(s.Annotations, map[string]string{"reflector/allowed": "true"}) {
		t.Errorf("annotations = %v, want reflector/allowed=true", s.Annotations)
	}
}

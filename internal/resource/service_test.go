package resource

import (
	"maps"
	"reflect"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	v1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
)

func servicePortNames(ps []corev1.ServicePort) []string {
	var names []string
	for _, p := range ps {
		names = append(names, p.Name)
	}
	return names
}

func TestService(t *testing.T) {
	tests := []struct {
		name            string
		broker          *v1alpha1.Broker
		wantType        corev1.ServiceType
		wantAnnotations map[string]string
		wantRanges      []string
		wantPorts       []corev1.ServicePort
	}{
		{
			name:     "defaults",
			broker:   newBroker(),
			wantType: corev1.ServiceTypeClusterIP,
			wantPorts: []corev1.ServicePort{
				{Name: "mqtt", Protocol: corev1.ProtocolTCP, Port: 1883, TargetPort: intstr.FromString("mqtt")},
			},
		},
		{
			name: "load balancer with every listener",
			broker: newBroker(withTLS, withWebSocket, func(b *v1alpha1.Broker) {
				b.Spec.Service = v1alpha1.ServiceSpec{
					Type:                     corev1.ServiceTypeLoadBalancer,
					Annotations:              map[string]string{"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"},
					LoadBalancerSourceRanges: []string{"10.0.0.0/8", "192.0.2.0/24"},
				}
			}),
			wantType:        corev1.ServiceTypeLoadBalancer,
			wantAnnotations: map[string]string{"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"},
			wantRanges:      []string{"10.0.0.0/8", "192.0.2.0/24"},
			wantPorts: []corev1.ServicePort{
				{Name: "mqtt", Protocol: corev1.ProtocolTCP, Port: 1883, TargetPort: intstr.FromString("mqtt")},
				{Name: "mqtts", Protocol: corev1.ProtocolTCP, Port: 8883, TargetPort: intstr.FromString("mqtts")},
				{Name: "ws", Protocol: corev1.ProtocolTCP, Port: 8080, TargetPort: intstr.FromString("ws")},
			},
		},
		{
			// The API server refuses source ranges on a non-LoadBalancer.
			name: "source ranges dropped for NodePort",
			broker: newBroker(func(b *v1alpha1.Broker) {
				b.Spec.Service = v1alpha1.ServiceSpec{Type: corev1.ServiceTypeNodePort, LoadBalancerSourceRanges: []string{"10.0.0.0/8"}}
			}),
			wantType: corev1.ServiceTypeNodePort,
			wantPorts: []corev1.ServicePort{
				{Name: "mqtt", Protocol: corev1.ProtocolTCP, Port: 1883, TargetPort: intstr.FromString("mqtt")},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := Service(tt.broker)
			if svc.Name != "acme" || svc.Namespace != "tenant-a" {
				t.Errorf("Service is %s/%s, want tenant-a/acme", svc.Namespace, svc.Name)
			}
			if svc.Spec.Type != tt.wantType {
				t.Errorf("type = %q, want %q", svc.Spec.Type, tt.wantType)
			}
			if !maps.Equal(svc.Annotations, tt.wantAnnotations) {
				t.Errorf("annotations = %v, want %v", svc.Annotations, tt.wantAnnotations)
			}
			if !slices.Equal(svc.Spec.LoadBalancerSourceRanges, tt.wantRanges) {
				t.Errorf("loadBalancerSourceRanges = %v, want %v", svc.Spec.LoadBalancerSourceRanges, tt.wantRanges)
			}
			if !reflect.DeepEqual(svc.Spec.Ports, tt.wantPorts) {
				t.Errorf("ports = %+v, want %+v", svc.Spec.Ports, tt.wantPorts)
			}
			if svc.Spec.ClusterIP != "" {
				t.Errorf("clusterIP = %q, want it left to the API server", svc.Spec.ClusterIP)
			}
		})
	}
}

func TestHeadlessService(t *testing.T) {
	tests := []struct {
		name      string
		broker    *v1alpha1.Broker
		wantPorts []string
	}{
		{"mqtt only", newBroker(), []string{"mqtt", "admin"}},
		{"every listener", newBroker(withTLS, withWebSocket), []string{"mqtt", "mqtts", "ws", "admin"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := HeadlessService(tt.broker)
			if svc.Name != "acme-headless" {
				t.Errorf("name = %q, want acme-headless", svc.Name)
			}
			if svc.Spec.ClusterIP != corev1.ClusterIPNone {
				t.Errorf("clusterIP = %q, want None", svc.Spec.ClusterIP)
			}
			if !svc.Spec.PublishNotReadyAddresses {
				t.Error("publishNotReadyAddresses = false, want true")
			}
			if got := servicePortNames(svc.Spec.Ports); !slices.Equal(got, tt.wantPorts) {
				t.Errorf("ports = %v, want %v", got, tt.wantPorts)
			}
			admin := svc.Spec.Ports[len(svc.Spec.Ports)-1]
			if admin.Port != AdminPort || admin.TargetPort != intstr.FromString("admin") {
				t.Errorf("admin port = %+v, want %d → admin", admin, AdminPort)
			}
		})
	}
	// The admin API is never on the client Service.
	for _, p := range Service(newBroker(withTLS, withWebSocket)).Spec.Ports {
		if p.Name == PortAdmin || p.Port == AdminPort {
			t.Errorf("client Service exposes the admin port: %+v", p)
		}
	}
}

func TestEndpoints(t *testing.T) {
	tests := []struct {
		name   string
		broker *v1alpha1.Broker
		want   []v1alpha1.Endpoint
	}{
		{
			name:   "mqtt only",
			broker: newBroker(),
			want: []v1alpha1.Endpoint{
				{Name: "mqtt", Address: "acme.tenant-a.svc:1883", URL: "mqtt://acme.tenant-a.svc:1883"},
			},
		},
		{
			name:   "every listener with defaults",
			broker: newBroker(withTLS, withWebSocket),
			want: []v1alpha1.Endpoint{
				{Name: "mqtt", Address: "acme.tenant-a.svc:1883", URL: "mqtt://acme.tenant-a.svc:1883"},
				{Name: "mqtts", Address: "acme.tenant-a.svc:8883", URL: "mqtts://acme.tenant-a.svc:8883"},
				{Name: "ws", Address: "acme.tenant-a.svc:8080", URL: "ws://acme.tenant-a.svc:8080/mqtt"},
			},
		},
		{
			name: "custom ports and path",
			broker: newBroker(func(b *v1alpha1.Broker) {
				b.Spec.Listeners = v1alpha1.Listeners{
					MQTT:      v1alpha1.MQTTListener{Port: 11883},
					TLS:       &v1alpha1.TLSListener{Port: 18883, SecretName: "certs"},
					WebSocket: &v1alpha1.WebSocketListener{Port: 9001, Path: "/ws"},
				}
			}),
			want: []v1alpha1.Endpoint{
				{Name: "mqtt", Address: "acme.tenant-a.svc:11883", URL: "mqtt://acme.tenant-a.svc:11883"},
				{Name: "mqtts", Address: "acme.tenant-a.svc:18883", URL: "mqtts://acme.tenant-a.svc:18883"},
				{Name: "ws", Address: "acme.tenant-a.svc:9001", URL: "ws://acme.tenant-a.svc:9001/ws"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Endpoints(tt.broker); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Endpoints =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

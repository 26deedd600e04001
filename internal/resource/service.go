package resource

import (
	"fmt"
	"net"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	v1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
)

func mqttPort(b *v1alpha1.Broker) int32 {
	if p := b.Spec.Listeners.MQTT.Port; p != 0 {
		return p
	}
	return DefaultMQTTPort
}

// mqttEnabled: the plain listener is on unless listeners.mqtt.enabled is
// false.
func mqttEnabled(b *v1alpha1.Broker) bool {
	e := b.Spec.Listeners.MQTT.Enabled
	return e == nil || *e
}

func tlsPort(t *v1alpha1.TLSListener) int32 {
	if t.Port != 0 {
		return t.Port
	}
	return DefaultTLSPort
}

func webSocketPort(w *v1alpha1.WebSocketListener) int32 {
	if w.Port != 0 {
		return w.Port
	}
	return DefaultWebSocketPort
}

func webSocketPath(w *v1alpha1.WebSocketListener) string {
	if w.Path != "" {
		return w.Path
	}
	return DefaultWebSocketPath
}

// listener is one client listener of a Broker, in a fixed order: mqtt,
// mqtts, ws.
type listener struct {
	name   string // port name, also the Endpoint name
	scheme string // URL scheme
	port   int32
	path   string // URL path (WebSocket only)
}

// url is the listener's URL at host.
func (l listener) url(host string) string {
	return l.scheme + "://" + net.JoinHostPort(host, strconv.Itoa(int(l.port))) + l.path
}

func listeners(b *v1alpha1.Broker) []listener {
	ls := make([]listener, 0, 3)
	if mqttEnabled(b) {
		ls = append(ls, listener{name: PortMQTT, scheme: "mqtt", port: mqttPort(b)})
	}
	if t := b.Spec.Listeners.TLS; t != nil {
		ls = append(ls, listener{name: PortMQTTS, scheme: "mqtts", port: tlsPort(t)})
	}
	if w := b.Spec.Listeners.WebSocket; w != nil {
		ls = append(ls, listener{name: PortWebSocket, scheme: "ws", port: webSocketPort(w), path: webSocketPath(w)})
	}
	return ls
}

func servicePorts(ls []listener) []corev1.ServicePort {
	ports := make([]corev1.ServicePort, 0, len(ls)+1)
	for _, l := range ls {
		ports = append(ports, corev1.ServicePort{
			Name:       l.name,
			Protocol:   corev1.ProtocolTCP,
			Port:       l.port,
			TargetPort: intstr.FromString(l.name),
		})
	}
	return ports
}

// Service is the client Service: one port per listener, shaped by
// spec.service. The admin port is not on it, so a LoadBalancer never
// exposes the admin API. Node ports and the cluster IP are left to the API
// server (server-side apply keeps what it allocated).
func Service(b *v1alpha1.Broker) *corev1.Service {
	typ := b.Spec.Service.Type
	if typ == "" {
		typ = corev1.ServiceTypeClusterIP
	}
	svc := &corev1.Service{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        ServiceName(b),
			Namespace:   b.Namespace,
			Labels:      ObjectLabels(b),
			Annotations: merge(nil, b.Spec.Service.Annotations),
		},
		Spec: corev1.ServiceSpec{
			Type:     typ,
			Selector: Labels(b),
			Ports:    servicePorts(listeners(b)),
		},
	}
	// The API server refuses source ranges on other Service types.
	if typ == corev1.ServiceTypeLoadBalancer && len(b.Spec.Service.LoadBalancerSourceRanges) > 0 {
		svc.Spec.LoadBalancerSourceRanges = append([]string(nil), b.Spec.Service.LoadBalancerSourceRanges...)
	}
	return svc
}

// HeadlessService governs the StatefulSet (stable pod DNS names) and is what
// the operator and Prometheus reach pods through: it carries the admin port
// and publishes pods before they are ready, so a pod waiting for its first
// auth bundle can be pushed one and a failing pod can still be scraped.
func HeadlessService(b *v1alpha1.Broker) *corev1.Service {
	ports := servicePorts(listeners(b))
	ports = append(ports, corev1.ServicePort{
		Name:       PortAdmin,
		Protocol:   corev1.ProtocolTCP,
		Port:       AdminPort,
		TargetPort: intstr.FromString(PortAdmin),
	})
	return &corev1.Service{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      HeadlessServiceName(b),
			Namespace: b.Namespace,
			Labels:    ObjectLabels(b),
		},
		Spec: corev1.ServiceSpec{
			Type:                     corev1.ServiceTypeClusterIP,
			ClusterIP:                corev1.ClusterIPNone,
			PublishNotReadyAddresses: true,
			Selector:                 Labels(b),
			Ports:                    ports,
		},
	}
}

// serviceHost is the client Service's cluster DNS name. It omits the
// cluster domain, so it resolves whatever the domain is.
func serviceHost(b *v1alpha1.Broker) string {
	return fmt.Sprintf("%s.%s.svc", ServiceName(b), b.Namespace)
}

// Endpoints are the addresses clients use, one per listener, for
// Broker.status.endpoints.
func Endpoints(b *v1alpha1.Broker) []v1alpha1.Endpoint {
	host := serviceHost(b)
	ls := listeners(b)
	eps := make([]v1alpha1.Endpoint, 0, len(ls))
	for _, l := range ls {
		eps = append(eps, v1alpha1.Endpoint{
			Name:    l.name,
			Address: net.JoinHostPort(host, strconv.Itoa(int(l.port))),
			URL:     l.url(host),
		})
	}
	return eps
}

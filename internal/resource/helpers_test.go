package resource

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
)

// newBroker is Broker "acme" in namespace "tenant-a" with an empty spec
// (no CRD defaults applied), changed by each mutate in turn.
func newBroker(mutate ...func(*v1alpha1.Broker)) *v1alpha1.Broker {
	b := &v1alpha1.Broker{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Broker"},
		ObjectMeta: metav1.ObjectMeta{Name: "acme", Namespace: "tenant-a"},
	}
	for _, m := range mutate {
		m(b)
	}
	return b
}

func withTLS(b *v1alpha1.Broker) {
	b.Spec.Listeners.TLS = &v1alpha1.TLSListener{SecretName: "acme-tls"}
}

func withWebSocket(b *v1alpha1.Broker) {
	b.Spec.Listeners.WebSocket = &v1alpha1.WebSocketListener{}
}

package resource

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	v1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
)

// LabelNamespaceName is set by the API server on every namespace to its
// name, so a policy can select one namespace without labels of its own.
const LabelNamespaceName = "kubernetes.io/metadata.name"

// NetworkPolicyName is the broker pods' NetworkPolicy.
func NetworkPolicyName(b *v1alpha1.Broker) string { return b.Name }

// NetworkPolicyEnabled reports spec.networkPolicy.enabled (default true).
func NetworkPolicyEnabled(b *v1alpha1.Broker) bool {
	e := b.Spec.NetworkPolicy.Enabled
	return e == nil || *e
}

// NetworkPolicy admits to the broker pods only: the admin port from
// operatorNamespace (the pushes) and spec.networkPolicy.adminFrom (e.g.
// Prometheus); the client listeners from spec.networkPolicy.clientFrom, or
// from everywhere when that is empty. Every other port is closed. It is nil
// when disabled, or when the operator's namespace is unknown: a policy
// then would lock the operator out of its own brokers.
func NetworkPolicy(b *v1alpha1.Broker, operatorNamespace string) *networkingv1.NetworkPolicy {
	if !NetworkPolicyEnabled(b) || operatorNamespace == "" {
		return nil
	}
	tcp := corev1.ProtocolTCP
	port := func(name string) networkingv1.NetworkPolicyPort {
		p := intstr.FromString(name)
		return networkingv1.NetworkPolicyPort{Protocol: &tcp, Port: &p}
	}
	adminFrom := []networkingv1.NetworkPolicyPeer{{
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{LabelNamespaceName: operatorNamespace}},
	}}
	for _, p := range b.Spec.NetworkPolicy.AdminFrom {
		adminFrom = append(adminFrom, *p.DeepCopy())
	}
	rules := []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{port(PortAdmin)}, From: adminFrom}}
	if ls := listeners(b); len(ls) > 0 {
		client := networkingv1.NetworkPolicyIngressRule{}
		for _, l := range ls {
			client.Ports = append(client.Ports, port(l.name))
		}
		for _, p := range b.Spec.NetworkPolicy.ClientFrom {
			client.From = append(client.From, *p.DeepCopy())
		}
		rules = append(rules, client)
	}
	return &networkingv1.NetworkPolicy{
		TypeMeta: metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      NetworkPolicyName(b),
			Namespace: b.Namespace,
			Labels:    ObjectLabels(b),
		},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: Labels(b)},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress:     rules,
		},
	}
}

package controllers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	mqttv1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
	"github.com/fleetmq/fleetmq/internal/authsync"
	"github.com/fleetmq/fleetmq/internal/pki"
	"github.com/fleetmq/fleetmq/internal/resource"
)

// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;update;patch;delete

// channel is what the operator needs to talk to a Broker's pods safely.
type channel struct {
	tls *authsync.TLS
	// renewAt is when a certificate falls due (or the old CA leaves the
	// trust bundle): the Broker is looked at again then.
	renewAt time.Time
}

// reconcileChannel keeps the Broker's CA and the admin API's serving
// certificate valid (internal/pki: issued, renewed, rotated with overlap)
// and the read-only metrics token in its Secret.
func (r *BrokerReconciler) reconcileChannel(ctx context.Context, b *mqttv1alpha1.Broker) (*channel, error) {
	caSecret, err := r.optionalSecret(ctx, b.Namespace, resource.CASecretName(b))
	if err != nil {
		return nil, err
	}
	tlsSecret, err := r.optionalSecret(ctx, b.Namespace, resource.AdminTLSSecretName(b))
	if err != nil {
		return nil, err
	}
	cur := pki.Material{
		CACert: caSecret.Data[resource.TLSCAKey], CAKey: caSecret.Data[resource.CAKeyKey], OldCACert: caSecret.Data[resource.OldCAKey],
		ServerCert: tlsSecret.Data[resource.TLSCertKey], ServerKey: tlsSecret.Data[resource.TLSKeyKey],
	}
	res, err := pki.Ensure(cur, resource.AdminCAName(b), resource.AdminDNSNames(b), time.Now())
	if err != nil {
		return nil, fmt.Errorf("admin API certificates: %w", err)
	}
	m := res.Material
	// The CA first: a serving certificate is never published before the
	// CA that verifies it.
	if err := r.applySecret(ctx, b, caSecret, resource.CASecret(b, m.CACert, m.CAKey, m.OldCACert)); err != nil {
		return nil, err
	}
	if err := r.applySecret(ctx, b, tlsSecret, resource.AdminTLSSecret(b, m.ServerCert, m.ServerKey, m.Trust())); err != nil {
		return nil, err
	}
	for _, c := range res.Changes {
		r.event(b, corev1.EventTypeNormal, c.What, "Admin API %s: %s", c.What, c.Why)
	}

	metrics, err := r.optionalSecret(ctx, b.Namespace, resource.MetricsSecretName(b))
	if err != nil {
		return nil, err
	}
	token := string(metrics.Data[resource.MetricsTokenKey])
	if token == "" {
		token = randomToken(32)
	}
	if err := r.applySecret(ctx, b, metrics, resource.MetricsSecret(b, token, m.Trust())); err != nil {
		return nil, err
	}
	return &channel{
		tls:     &authsync.TLS{ServerName: resource.AdminServerName(b), RootsPEM: m.Trust()},
		renewAt: res.NextCheck,
	}, nil
}

// optionalSecret reads a Secret the operator owns; a missing one is empty.
// It reads past the label-filtered cache when the Secret is not there, so
// a Secret whose label someone removed is found (and relabelled by the
// apply) instead of replaced: a new CA would drop the old one's overlap.
func (r *BrokerReconciler) optionalSecret(ctx context.Context, ns, name string) (*corev1.Secret, error) {
	s, err := getSecret(ctx, r.Client, r.APIReader, ns, name)
	if apierrors.IsNotFound(err) {
		return &corev1.Secret{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get Secret %s: %w", name, err)
	}
	return s, nil
}

// applySecret applies want unless cur, as read, already is it: the steady
// state costs no API write.
func (r *BrokerReconciler) applySecret(ctx context.Context, b *mqttv1alpha1.Broker, cur, want *corev1.Secret) error {
	same := cur.ResourceVersion != "" && cur.Type == want.Type && metav1.IsControlledBy(cur, b) &&
		maps.EqualFunc(cur.Data, want.Data, bytes.Equal)
	for k, v := range want.Labels {
		same = same && cur.Labels[k] == v
	}
	if same {
		return nil
	}
	return apply(ctx, r.Client, r.Scheme, b, want)
}

// reconcileNetworkPolicy applies the Broker's NetworkPolicy, or deletes
// the one it made when spec.networkPolicy.enabled is false. Without the
// operator's namespace (OperatorNamespace) none is made, with a warning:
// the policy would shut the operator out.
func (r *BrokerReconciler) reconcileNetworkPolicy(ctx context.Context, b *mqttv1alpha1.Broker) error {
	if np := resource.NetworkPolicy(b, r.OperatorNamespace); np != nil {
		return apply(ctx, r.Client, r.Scheme, b, np)
	}
	if resource.NetworkPolicyEnabled(b) {
		r.event(b, corev1.EventTypeWarning, "NetworkPolicySkipped",
			"spec.networkPolicy is enabled but the operator does not know its own namespace (set POD_NAMESPACE or --operator-namespace)")
	}
	return r.deleteIfOwned(ctx, b, &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: b.Namespace, Name: resource.NetworkPolicyName(b)}})
}

// pushFailureReason tells a broker that is not who it should be from one
// that is merely unreachable.
func pushFailureReason(err error) string {
	if errors.Is(err, authsync.ErrUntrusted) {
		return mqttv1alpha1.ReasonAdminCertificateUntrusted
	}
	return mqttv1alpha1.ReasonAuthPushFailed
}

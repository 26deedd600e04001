package resource

// The operator↔broker channel: the per-Broker CA, the admin API's serving
// certificate and the read-only metrics token (see internal/pki).

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
)

// Keys and mount paths of the channel's Secrets.
const (
	// CAKeyKey is the CA's private key in the CA Secret (TLSCAKey holds
	// its certificate). It never leaves the operator: no pod mounts it.
	CAKeyKey = "ca.key"
	// OldCAKey is the CA a rotation replaced, trusted until it expires.
	OldCAKey = "ca-old.crt"

	// AdminTLSDir holds the admin API's serving certificate (TLSCertKey,
	// TLSKeyKey of the admin TLS Secret), watched and reloaded.
	AdminTLSDir = "/etc/fleetmq/admin-tls"

	// MetricsDir holds the metrics token (MetricsTokenKey).
	MetricsDir      = "/etc/fleetmq/metrics"
	MetricsTokenKey = "token"
)

// Volume names of the channel's Secrets in the broker pod.
const (
	VolumeAdminTLS = "admin-tls"
	VolumeMetrics  = "metrics"
)

// CASecretName holds the Broker's CA (certificate and key).
func CASecretName(b *v1alpha1.Broker) string { return b.Name + "-ca" }

// AdminTLSSecretName holds the admin API's serving certificate.
func AdminTLSSecretName(b *v1alpha1.Broker) string { return b.Name + "-admin-tls" }

// MetricsSecretName holds the read-only /metrics token and the CA bundle
// that verifies the admin port: all a scraper needs, nothing more.
func MetricsSecretName(b *v1alpha1.Broker) string { return b.Name + "-metrics" }

// AdminServerName is the name the admin API's certificate is verified
// against: the headless Service's. The operator dials the pod IP and
// checks this name, so no DNS lookup is involved.
func AdminServerName(b *v1alpha1.Broker) string {
	return fmt.Sprintf("%s.%s.svc", HeadlessServiceName(b), b.Namespace)
}

// AdminDNSNames are the names of the serving certificate: the headless
// Service and every pod's DNS name under it.
func AdminDNSNames(b *v1alpha1.Broker) []string {
	name := AdminServerName(b)
	return []string{name, "*." + name}
}

// AdminCAName is the subject CN of the Broker's CA.
func AdminCAName(b *v1alpha1.Broker) string {
	return fmt.Sprintf("fleetmq %s/%s admin CA", b.Namespace, b.Name)
}

// CASecret holds the CA in force (TLSCAKey, CAKeyKey) and, during a
// rotation, the previous CA certificate (OldCAKey).
func CASecret(b *v1alpha1.Broker, caCert, caKey, oldCACert []byte) *corev1.Secret {
	data := map[string][]byte{TLSCAKey: caCert, CAKeyKey: caKey}
	if len(oldCACert) > 0 {
		data[OldCAKey] = oldCACert
	}
	return channelSecret(b, CASecretName(b), corev1.SecretTypeOpaque, data)
}

// AdminTLSSecret holds the serving certificate (with the CA appended) and
// its key, mounted at AdminTLSDir, and the trust bundle (TLSCAKey).
func AdminTLSSecret(b *v1alpha1.Broker, cert, key, trust []byte) *corev1.Secret {
	return channelSecret(b, AdminTLSSecretName(b), corev1.SecretTypeTLS, map[string][]byte{
		TLSCertKey: cert, TLSKeyKey: key, TLSCAKey: trust,
	})
}

// MetricsSecret holds the read-only metrics token (mounted at MetricsDir)
// and the trust bundle a scraper verifies the admin port with.
func MetricsSecret(b *v1alpha1.Broker, token string, trust []byte) *corev1.Secret {
	return channelSecret(b, MetricsSecretName(b), corev1.SecretTypeOpaque, map[string][]byte{
		MetricsTokenKey: []byte(token), TLSCAKey: trust,
	})
}

func channelSecret(b *v1alpha1.Broker, name string, typ corev1.SecretType, data map[string][]byte) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: b.Namespace,
			Labels:    secretLabels(b),
		},
		Type: typ,
		Data: data,
	}
}

package resource

import (
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
)

// secretLabels mark a Broker's Secrets for the operator's label-filtered
// Secret cache (LabelCredentials), besides the usual child labels.
func secretLabels(b *v1alpha1.Broker) map[string]string {
	l := ObjectLabels(b)
	l[LabelCredentials] = "true"
	return l
}

// AdminSecret holds the bearer token of the broker's admin API, mounted at
// AdminDir (key AdminTokenKey). The reconciler generates the token once and
// keeps it; the broker re-reads the file when a presented token does not match.
func AdminSecret(b *v1alpha1.Broker, token string) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      AdminSecretName(b),
			Namespace: b.Namespace,
			Labels:    secretLabels(b),
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{AdminTokenKey: []byte(token)},
	}
}

// UserCredentialsSecret is the Secret generated for a User without
// spec.passwordSecretRef (v1alpha1.CredentialsSecretName, in the User's
// namespace): what an application needs to connect to the Broker's plain
// MQTT listener, under the v1alpha1.Credentials*Key keys.
// It carries LabelCredentials so the operator sees edits to it.
func UserCredentialsSecret(u *v1alpha1.User, b *v1alpha1.Broker, username, password string) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      v1alpha1.CredentialsSecretName(u.Name),
			Namespace: u.Namespace,
			Labels: map[string]string{
				LabelName:        appName,
				LabelInstance:    b.Name,
				LabelComponent:   componentUserCrd,
				LabelManagedBy:   managedBy,
				LabelBroker:      b.Name,
				LabelCredentials: "true",
			},
		},
		Type: corev1.SecretTypeOpaque,
		Data: listenerKeys(b, map[string][]byte{
			v1alpha1.CredentialsUsernameKey: []byte(username),
			v1alpha1.CredentialsPasswordKey: []byte(password),
			v1alpha1.CredentialsHostKey:     []byte(serviceHost(b)),
		}),
	}
}

// listenerKeys adds the listeners in use to credentials data: port (plain
// MQTT, absent when it is off), tlsPort and websocketURL.
func listenerKeys(b *v1alpha1.Broker, data map[string][]byte) map[string][]byte {
	for _, l := range listeners(b) {
		switch l.name {
		case PortMQTT:
			data[v1alpha1.CredentialsPortKey] = []byte(strconv.Itoa(int(l.port)))
		case PortMQTTS:
			data[v1alpha1.CredentialsTLSPortKey] = []byte(strconv.Itoa(int(l.port)))
		case PortWebSocket:
			data[v1alpha1.CredentialsWebSocketURLKey] = []byte(l.url(serviceHost(b)))
		}
	}
	return data
}

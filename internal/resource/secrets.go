package resource

import (
	"net"
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
// spec.passwordSecretRef (v1alpha1.GeneratedSecretName, in the User's
// namespace): what an application needs to connect to the Broker, under the
// v1alpha1.Credentials*Key keys, laid out for Service Binding for
// Kubernetes (type, provider, uri, host, port, username, password).
// spec.credentialsSecret's labels and annotations are added; the
// operator's labels win. It carries LabelCredentials so the operator sees
// edits to it.
func UserCredentialsSecret(u *v1alpha1.User, b *v1alpha1.Broker, username, password string) *corev1.Secret {
	var extraLabels, annotations map[string]string
	if t := u.Spec.CredentialsSecret; t != nil {
		extraLabels, annotations = t.Labels, t.Annotations
	}
	return &corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      v1alpha1.GeneratedSecretName(u),
			Namespace: u.Namespace,
			Labels: merge(extraLabels, map[string]string{
				LabelName:        appName,
				LabelInstance:    b.Name,
				LabelComponent:   ComponentUserCredentials,
				LabelManagedBy:   managedBy,
				LabelBroker:      b.Name,
				LabelCredentials: "true",
			}),
			Annotations: annotations,
		},
		Type: corev1.SecretTypeOpaque,
		Data: listenerKeys(b, map[string][]byte{
			v1alpha1.CredentialsTypeKey:     []byte("mqtt"),
			v1alpha1.CredentialsProviderKey: []byte(appName),
			v1alpha1.CredentialsUsernameKey: []byte(username),
			v1alpha1.CredentialsPasswordKey: []byte(password),
			v1alpha1.CredentialsHostKey:     []byte(serviceHost(b)),
		}),
	}
}

// CredentialsListenerKeys are the keys of a credentials Secret that follow
// the Broker's listeners (uri, port, tlsPort, websocketURL). The User
// reconciler compares them between Broker versions to know when its
// Secrets need updating.
func CredentialsListenerKeys(b *v1alpha1.Broker) map[string][]byte {
	return listenerKeys(b, map[string][]byte{})
}

// listenerKeys adds the listeners in use to credentials data: uri (see
// credentialsURI), port (plain MQTT, absent when it is off), tlsPort and
// websocketURL.
func listenerKeys(b *v1alpha1.Broker, data map[string][]byte) map[string][]byte {
	data[v1alpha1.CredentialsURIKey] = []byte(credentialsURI(b))
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

// credentialsURI is mqtt://host:port of the plain MQTT listener, or
// mqtts:// with the TLS port when the Broker serves MQTT only over TLS.
func credentialsURI(b *v1alpha1.Broker) string {
	var tls *listener
	for _, l := range listeners(b) {
		switch l.name {
		case PortMQTT:
			return l.scheme + "://" + net.JoinHostPort(serviceHost(b), strconv.Itoa(int(l.port)))
		case PortMQTTS:
			tls = &l
		}
	}
	if tls != nil {
		return tls.scheme + "://" + net.JoinHostPort(serviceHost(b), strconv.Itoa(int(tls.port)))
	}
	return "mqtt://" + net.JoinHostPort(serviceHost(b), strconv.Itoa(int(mqttPort(b))))
}

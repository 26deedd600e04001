package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BrokerReference names a Broker in the same namespace: Users and ACLs
// never reach across namespaces (tenant isolation).
type BrokerReference struct {
	// name of the Broker.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// The credentials Secret: for a User without spec.passwordSecretRef the
// operator generates a Secret named GeneratedSecretName(user), owned by
// the User, with what an application needs to connect to the Broker's
// plain MQTT listener under these keys. Applications and GitOps tooling
// read it, so its name and keys are API.
const (
	// CredentialsUsernameKey holds the username in force.
	CredentialsUsernameKey = "username"
	// CredentialsPasswordKey holds the generated password. It is also the
	// default of SecretKeyReference.key (the marker cannot name a constant).
	CredentialsPasswordKey = "password"
	// CredentialsHostKey holds the DNS name of the Broker's client Service.
	CredentialsHostKey = "host"
	// CredentialsPortKey holds the plain MQTT listener's port, in decimal;
	// absent when the plain listener is off.
	CredentialsPortKey = "port"
	// CredentialsTLSPortKey holds the MQTT-over-TLS port, in decimal, when
	// the Broker has listeners.tls.
	CredentialsTLSPortKey = "tlsPort"
	// CredentialsWebSocketURLKey holds the ws:// URL of the WebSocket
	// listener, when the Broker has listeners.websocket.
	CredentialsWebSocketURLKey = "websocketURL"
	// CredentialsURIKey holds mqtt://host:port (mqtts:// and the TLS port
	// when the Broker has no plain MQTT listener but a TLS one).
	CredentialsURIKey = "uri"
	// CredentialsTypeKey and CredentialsProviderKey are the Service
	// Binding for Kubernetes keys: always "mqtt" and "fleetmq".
	CredentialsTypeKey     = "type"
	CredentialsProviderKey = "provider"
)

// CredentialsSecretName is the default name of the credentials Secret the
// operator generates for the User named user: <user>-mqtt-credentials.
func CredentialsSecretName(user string) string { return user + "-mqtt-credentials" }

// GeneratedSecretName is the name of the credentials Secret the operator
// generates for u: spec.credentialsSecret.name, or
// CredentialsSecretName(u.Name) when that is empty.
func GeneratedSecretName(u *User) string {
	if t := u.Spec.CredentialsSecret; t != nil && t.Name != "" {
		return t.Name
	}
	return CredentialsSecretName(u.Name)
}

// CredentialsSecretTemplate shapes the credentials Secret the operator
// generates for a User without spec.passwordSecretRef.
type CredentialsSecretTemplate struct {
	// name of the Secret. Defaults to <user>-mqtt-credentials. Changing it
	// moves the Secret: the new one keeps the password, the old one is
	// deleted.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name,omitempty"`
	// labels added to the Secret (the operator's own labels win).
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// annotations added to the Secret.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// SecretKeyReference names a key of a Secret in the same namespace.
type SecretKeyReference struct {
	// name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// key in the Secret's data holding the password.
	// +optional
	// +kubebuilder:default=password
	// +kubebuilder:validation:MinLength=1
	Key string `json:"key,omitempty"`
}

// UserSpec is an MQTT principal on one Broker.
// +kubebuilder:validation:XValidation:rule="!has(self.passwordSecretRef) || !has(self.credentialsSecret)",message="credentialsSecret shapes the generated Secret: it cannot be set with passwordSecretRef"
// +kubebuilder:validation:XValidation:rule="has(self.username) == has(oldSelf.username) && (!has(self.username) || self.username == oldSelf.username)",message="username is immutable: create a new User instead"
type UserSpec struct {
	// brokerRef is the Broker, in this namespace, the user belongs to.
	// +required
	BrokerRef BrokerReference `json:"brokerRef"`

	// username clients present in CONNECT. Defaults to metadata.name.
	// Immutable.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[^\s:+#/]+$`
	Username string `json:"username,omitempty"`

	// passwordSecretRef takes the password from a Secret. Absent: the
	// operator generates one into the Secret <user>-mqtt-credentials (keys
	// username, password, host, port, uri, type, provider), owned by this
	// User.
	// +optional
	PasswordSecretRef *SecretKeyReference `json:"passwordSecretRef,omitempty"`

	// credentialsSecret shapes the Secret generated when
	// passwordSecretRef is absent: its name, labels and annotations.
	// +optional
	CredentialsSecret *CredentialsSecretTemplate `json:"credentialsSecret,omitempty"`

	// groups the user belongs to, for ACL subjects.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=128
	Groups []string `json:"groups,omitempty"`

	// disabled refuses the user's connections (and ends live ones) while
	// keeping it declared.
	// +optional
	Disabled bool `json:"disabled,omitempty"`

	// limits bound what the user may use of each broker pod, across all
	// of its connections there; changes apply to connected clients
	// without disconnecting them. Absent: only the Broker's limits apply.
	// +optional
	Limits *UserLimits `json:"limits,omitempty"`
}

// UserLimits bound what one User may use of a broker pod. Each limit is
// counted per pod: a Broker with 3 replicas admits up to 3 × maxConnections
// connections of the user in all.
// +kubebuilder:validation:MinProperties=1
type UserLimits struct {
	// maxConnections is how many connections the user may have open at
	// once. A CONNECT over it is refused (MQTT 5: CONNACK 0x97 Quota
	// exceeded; 3.1.1: return code 3, server unavailable); a reconnect
	// taking over one of the user's own sessions is not over it.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	MaxConnections *int32 `json:"maxConnections,omitempty"`
	// maxSubscriptionsPerClient replaces the Broker's
	// spec.limits.maxSubscriptionsPerClient for this user's sessions,
	// lower or higher. Past it SUBACK refuses the filter (MQTT 5: 0x97;
	// 3.1.1: 0x80).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	MaxSubscriptionsPerClient *int32 `json:"maxSubscriptionsPerClient,omitempty"`
	// publishRate limits the PUBLISH packets the user's connections send,
	// together, as a token bucket. Over it MQTT 5 clients get PUBACK/PUBREC
	// 0x97 and their QoS 0 messages are dropped; 3.1.1 QoS 0 messages are
	// dropped and a QoS 1/2 one closes the connection unacknowledged (it is
	// sent again after reconnecting). A client that keeps flooding is
	// disconnected (MQTT 5: 0x96 Message rate too high).
	// +optional
	PublishRate *PublishRate `json:"publishRate,omitempty"`
}

// PublishRate is a token bucket: messagesPerSecond tokens a second, at
// most burst saved up, one spent per PUBLISH. Over it, an MQTT 5 client
// gets PUBACK/PUBREC 0x97 Quota exceeded and its QoS 0 messages are
// dropped; a 3.1.1 client's QoS 0 messages are dropped and a QoS 1/2
// message closes its connection unacknowledged (the client sends it again
// after reconnecting). A connection whose refusals outnumber its accepted
// messages by 100 (or burst, when larger) is disconnected (MQTT 5:
// DISCONNECT 0x96 Message rate too high).
type PublishRate struct {
	// messagesPerSecond is the sustained rate.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	MessagesPerSecond int32 `json:"messagesPerSecond"`
	// burst is how many messages may be sent at once after a quiet spell.
	// Defaults to messagesPerSecond.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	Burst *int32 `json:"burst,omitempty"`
}

// UserStatus is the observed state of a User.
type UserStatus struct {
	// observedGeneration is the generation the status was computed for.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// conditions: Ready, and CredentialsSecret for a generated Secret.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// username in force.
	// +optional
	Username string `json:"username,omitempty"`
	// secretName holding the password (generated or referenced).
	// +optional
	SecretName string `json:"secretName,omitempty"`
	// appliedRevision is the first auth bundle revision that contains
	// this user as it is now, once every ready broker pod has applied it
	// (0 before). It moves only when this object changes, not with every
	// revision of the Broker.
	// +optional
	AppliedRevision int64 `json:"appliedRevision,omitempty"`
}

// User is an MQTT principal on one Broker.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=mqttuser,categories=fleetmq
// +kubebuilder:printcolumn:name="Broker",type=string,JSONPath=`.spec.brokerRef.name`
// +kubebuilder:printcolumn:name="Username",type=string,JSONPath=`.status.username`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type User struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired user.
	// +required
	Spec UserSpec `json:"spec"`
	// status is what the operator observed.
	// +optional
	Status UserStatus `json:"status,omitempty"`
}

// UserList is a list of Users.
//
// +kubebuilder:object:root=true
type UserList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []User `json:"items"`
}

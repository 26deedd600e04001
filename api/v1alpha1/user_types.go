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
// operator generates a Secret named CredentialsSecretName(user), owned by
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
)

// CredentialsSecretName is the name of the credentials Secret the
// operator generates for the User named user: <user>-mqtt-credentials.
func CredentialsSecretName(user string) string { return user + "-mqtt-credentials" }

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
	// username, password, host, port), owned by this User.
	// +optional
	PasswordSecretRef *SecretKeyReference `json:"passwordSecretRef,omitempty"`

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
}

// UserStatus is the observed state of a User.
type UserStatus struct {
	// observedGeneration is the generation the status was computed for.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// conditions: Ready.
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
	// appliedRevision is the lowest auth bundle revision applied by every
	// ready broker pod that contains this user.
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

package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// BrokerSpec is the desired state of one MQTT broker of one tenant.
// +kubebuilder:validation:XValidation:rule="has(self.persistence) == has(oldSelf.persistence)",message="persistence cannot be added or removed after creation: the StatefulSet's volumeClaimTemplates are immutable; create a new Broker instead"
type BrokerSpec struct {
	// image is the broker container image. Defaults to the operator's
	// --broker-image.
	// +optional
	Image string `json:"image,omitempty"`

	// replicas is the number of broker pods. Brokers do not cluster yet, so
	// only 1 is allowed.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:XValidation:rule="self == 1",message="replicas must be 1: fleetmq brokers do not cluster yet"
	Replicas *int32 `json:"replicas,omitempty"`

	// listeners are the endpoints clients connect to.
	// +optional
	// +kubebuilder:default={mqtt:{port:1883}}
	Listeners Listeners `json:"listeners,omitempty"`

	// service shapes the client Service.
	// +optional
	Service ServiceSpec `json:"service,omitempty"`

	// persistence keeps sessions and retained messages on a
	// PersistentVolumeClaim. Absent: an emptyDir, lost with the pod.
	// +optional
	Persistence *PersistenceSpec `json:"persistence,omitempty"`

	// resources of the broker container.
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`

	// limits bound clients and the broker; absent fields take the broker's
	// defaults.
	// +optional
	Limits BrokerLimits `json:"limits,omitempty"`

	// sessionTakeover is what a CONNECT gets when its client id names a
	// session another user owns: Refuse (the owner keeps its session; v5
	// CONNACK 0x87, 3.1.1 return code 5) or Discard (the owner is
	// disconnected, its session deleted, and the newcomer starts fresh).
	// +optional
	// +kubebuilder:default=Refuse
	// +kubebuilder:validation:Enum=Refuse;Discard
	SessionTakeover string `json:"sessionTakeover,omitempty"`

	// allowAnonymous accepts clients without a username.
	// +optional
	// +kubebuilder:default=false
	AllowAnonymous bool `json:"allowAnonymous,omitempty"`

	// pod overrides the broker pods' scheduling and metadata.
	// +optional
	Pod PodOverrides `json:"pod,omitempty"`

	// podDisruptionBudget for the broker pods. Absent: maxUnavailable 1.
	// +optional
	PodDisruptionBudget *PodDisruptionBudgetSpec `json:"podDisruptionBudget,omitempty"`

	// monitoring integrations.
	// +optional
	Monitoring MonitoringSpec `json:"monitoring,omitempty"`

	// networkPolicy restricts who reaches the broker pods. Enabled by
	// default: the admin port only from the operator's namespace (and
	// adminFrom), the MQTT ports from everywhere (or clientFrom).
	// +optional
	NetworkPolicy NetworkPolicySpec `json:"networkPolicy,omitempty"`

	// progressDeadlineSeconds is how long the Broker's pods may fail to
	// start (image pull, crash loop, unbound PersistentVolumeClaim) and its
	// auth pushes may keep failing before Ready turns False with reason
	// ProgressDeadlineExceeded (Argo CD: Degraded), as a Deployment's does.
	// +optional
	// +kubebuilder:default=600
	// +kubebuilder:validation:Minimum=1
	ProgressDeadlineSeconds *int32 `json:"progressDeadlineSeconds,omitempty"`

	// logLevel of the broker.
	// +optional
	// +kubebuilder:default=Info
	LogLevel LogLevel `json:"logLevel,omitempty"`
}

// LogLevel is how much the broker logs.
// +kubebuilder:validation:Enum=Debug;Info;Warn;Error
type LogLevel string

// Log levels.
const (
	LogLevelDebug LogLevel = "Debug"
	LogLevelInfo  LogLevel = "Info"
	LogLevelWarn  LogLevel = "Warn"
	LogLevelError LogLevel = "Error"
)

// Listeners are the broker's client endpoints.
// +kubebuilder:validation:XValidation:rule="!has(self.tls) || self.tls.port != self.mqtt.port",message="listeners.tls.port must differ from listeners.mqtt.port"
// +kubebuilder:validation:XValidation:rule="!has(self.websocket) || self.websocket.port != self.mqtt.port",message="listeners.websocket.port must differ from listeners.mqtt.port"
// +kubebuilder:validation:XValidation:rule="!has(self.tls) || !has(self.websocket) || self.tls.port != self.websocket.port",message="listeners.websocket.port must differ from listeners.tls.port"
// +kubebuilder:validation:XValidation:rule="!has(self.mqtt) || !has(self.mqtt.enabled) || self.mqtt.enabled || has(self.tls) || has(self.websocket)",message="listeners.mqtt.enabled: false needs listeners.tls or listeners.websocket, or no client could connect"
type Listeners struct {
	// mqtt is the plain TCP listener.
	// +optional
	// +kubebuilder:default={port:1883}
	MQTT MQTTListener `json:"mqtt,omitempty"`

	// tls is an MQTT-over-TLS listener with the certificate from a Secret.
	// +optional
	TLS *TLSListener `json:"tls,omitempty"`

	// websocket is an MQTT-over-WebSocket listener.
	// +optional
	WebSocket *WebSocketListener `json:"websocket,omitempty"`
}

// MQTTListener is the plain MQTT listener.
type MQTTListener struct {
	// enabled serves plain MQTT. Turn it off for a TLS-only (e.g. mTLS)
	// Broker, so passwords never cross the network in clear; then
	// listeners.tls or listeners.websocket must be set.
	// +optional
	// +kubebuilder:default=true
	Enabled *bool `json:"enabled,omitempty"`

	// port clients connect to.
	// +optional
	// +kubebuilder:default=1883
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +kubebuilder:validation:XValidation:rule="self != 8081",message="listeners.mqtt.port must differ from the admin port 8081"
	Port int32 `json:"port,omitempty"`
}

// TLSListener serves MQTT over TLS.
// +kubebuilder:validation:XValidation:rule="!has(self.useCommonNameAsUsername) || !self.useCommonNameAsUsername || (has(self.clientAuth) && self.clientAuth != 'None')",message="useCommonNameAsUsername needs clientAuth Optional or Required: the username comes from a verified client certificate"
type TLSListener struct {
	// port clients connect to.
	// +optional
	// +kubebuilder:default=8883
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +kubebuilder:validation:XValidation:rule="self != 8081",message="listeners.tls.port must differ from the admin port 8081"
	Port int32 `json:"port,omitempty"`

	// secretName is a Secret in the Broker's namespace with tls.crt, tls.key
	// and (for client certificates) ca.crt, as cert-manager writes them.
	// +required
	// +kubebuilder:validation:MinLength=1
	SecretName string `json:"secretName"`

	// clientAuth: None, Optional (verify when presented) or Required.
	// +optional
	// +kubebuilder:default=None
	// +kubebuilder:validation:Enum=None;Optional;Required
	ClientAuth string `json:"clientAuth,omitempty"`

	// useCommonNameAsUsername takes the username from a verified client
	// certificate's subject CN.
	// +optional
	UseCommonNameAsUsername bool `json:"useCommonNameAsUsername,omitempty"`
}

// WebSocketListener serves MQTT over WebSocket.
type WebSocketListener struct {
	// port clients connect to.
	// +optional
	// +kubebuilder:default=8080
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +kubebuilder:validation:XValidation:rule="self != 8081",message="listeners.websocket.port must differ from the admin port 8081"
	Port int32 `json:"port,omitempty"`

	// path of the WebSocket endpoint.
	// +optional
	// +kubebuilder:default="/mqtt"
	// +kubebuilder:validation:Pattern=`^/`
	Path string `json:"path,omitempty"`
}

// ServiceSpec shapes the client Service.
type ServiceSpec struct {
	// type of the Service.
	// +optional
	// +kubebuilder:default=ClusterIP
	// +kubebuilder:validation:Enum=ClusterIP;NodePort;LoadBalancer
	Type corev1.ServiceType `json:"type,omitempty"`

	// annotations added to the Service (e.g. for a cloud load balancer).
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`

	// loadBalancerSourceRanges restricts a LoadBalancer to these CIDRs.
	// +optional
	// +listType=set
	LoadBalancerSourceRanges []string `json:"loadBalancerSourceRanges,omitempty"`
}

// PersistenceSpec asks for a PersistentVolumeClaim per broker pod.
// +kubebuilder:validation:XValidation:rule="has(self.storageClassName) == has(oldSelf.storageClassName) && (!has(self.storageClassName) || self.storageClassName == oldSelf.storageClassName)",message="persistence.storageClassName is immutable: the StatefulSet's volumeClaimTemplates cannot change"
type PersistenceSpec struct {
	// storageClassName of the claim; absent uses the cluster default.
	// +optional
	StorageClassName *string `json:"storageClassName,omitempty"`

	// size of the claim. Immutable.
	// +optional
	// +kubebuilder:default="1Gi"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="persistence.size is immutable: the StatefulSet's volumeClaimTemplates cannot change; resize the PersistentVolumeClaim itself"
	Size resource.Quantity `json:"size,omitempty"`
}

// BrokerLimits bound what clients may use.
type BrokerLimits struct {
	// maxConnections is the number of concurrent client connections.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxConnections *int32 `json:"maxConnections,omitempty"`

	// maxPacketSize is the largest MQTT packet accepted, in bytes.
	// +optional
	// +kubebuilder:validation:Minimum=64
	// +kubebuilder:validation:Maximum=268435455
	MaxPacketSize *int32 `json:"maxPacketSize,omitempty"`

	// maxInflight is the QoS 1/2 window per client, both ways.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	MaxInflight *int32 `json:"maxInflight,omitempty"`

	// maxQueuedMessages a session holds while its client is offline or slow.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxQueuedMessages *int32 `json:"maxQueuedMessages,omitempty"`

	// maxSessionExpirySeconds caps how long an offline session is kept.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4294967295
	MaxSessionExpirySeconds *int64 `json:"maxSessionExpirySeconds,omitempty"`

	// maxPendingBytes is how much output may wait for a slow client before
	// QoS 0 messages to it are dropped, QoS 1/2 queued, and its own packets
	// no longer read until the backlog halves. Default 1 MiB.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxPendingBytes *int32 `json:"maxPendingBytes,omitempty"`

	// maxTopicLength bounds topic names and filters, in bytes. Default 1024.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	MaxTopicLength *int32 `json:"maxTopicLength,omitempty"`

	// maxTopicLevels bounds the levels of topic names and filters.
	// Default 32.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxTopicLevels *int32 `json:"maxTopicLevels,omitempty"`

	// maxKeepAliveSeconds caps the keep-alive a client may ask for.
	// Default 3600.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	MaxKeepAliveSeconds *int32 `json:"maxKeepAliveSeconds,omitempty"`

	// maxClientIDLength bounds client identifiers. Default 256.
	// +optional
	// +kubebuilder:validation:Minimum=23
	// +kubebuilder:validation:Maximum=65535
	MaxClientIDLength *int32 `json:"maxClientIDLength,omitempty"`

	// topicAliasMaximum is the number of inbound topic aliases a v5 client
	// may use. Default 64.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	TopicAliasMaximum *int32 `json:"topicAliasMaximum,omitempty"`

	// topicAliasMaximumOut is the number of topic aliases the broker uses
	// towards a v5 client (fewer when the client allows fewer). Each keeps
	// a copy of its topic. Default 16.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	TopicAliasMaximumOut *int32 `json:"topicAliasMaximumOut,omitempty"`

	// connectTimeoutSeconds is how long a new connection has, from accept,
	// to complete its CONNECT. Default 10.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	ConnectTimeoutSeconds *int32 `json:"connectTimeoutSeconds,omitempty"`

	// maxConnectPacketSize bounds the first packet, read before the client
	// is authenticated, in bytes. Default 65536 (maxPacketSize when smaller).
	// +optional
	// +kubebuilder:validation:Minimum=64
	// +kubebuilder:validation:Maximum=268435455
	MaxConnectPacketSize *int32 `json:"maxConnectPacketSize,omitempty"`

	// maxUnauthenticated is how many connections may be open without having
	// completed CONNECT. Default 1024.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxUnauthenticated *int32 `json:"maxUnauthenticated,omitempty"`

	// maxSubscriptionsPerClient bounds the subscriptions one session holds;
	// past it a SUBSCRIBE is refused with 0x97 Quota exceeded. Default 1000.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxSubscriptionsPerClient *int32 `json:"maxSubscriptionsPerClient,omitempty"`

	// maxRetainedPerUser bounds the retained messages one username
	// publishes. Default 100000.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxRetainedPerUser *int32 `json:"maxRetainedPerUser,omitempty"`

	// maxRetainedBytesPerUser bounds what one username's retained messages
	// weigh (topic, payload and properties), in bytes. Default 128 MiB.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxRetainedBytesPerUser *int64 `json:"maxRetainedBytesPerUser,omitempty"`

	// maxRetainedMessages bounds all retained messages. Default 1000000.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxRetainedMessages *int32 `json:"maxRetainedMessages,omitempty"`

	// maxRetainedBytes bounds what all retained messages weigh, in bytes.
	// Default 512 MiB.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxRetainedBytes *int64 `json:"maxRetainedBytes,omitempty"`
}

// PodOverrides are merged into the broker pods.
type PodOverrides struct {
	// labels added to the pods (the operator's own labels win).
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// annotations added to the pods.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
	// nodeSelector of the pods.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	// tolerations of the pods.
	// +optional
	// +listType=atomic
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
	// affinity of the pods.
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`
	// topologySpreadConstraints of the pods.
	// +optional
	// +listType=atomic
	TopologySpreadConstraints []corev1.TopologySpreadConstraint `json:"topologySpreadConstraints,omitempty"`
	// priorityClassName of the pods.
	// +optional
	PriorityClassName string `json:"priorityClassName,omitempty"`
	// securityContext of the pods. Absent: non-root, read-only root
	// filesystem, no privilege escalation, RuntimeDefault seccomp.
	// +optional
	SecurityContext *corev1.PodSecurityContext `json:"securityContext,omitempty"`
}

// PodDisruptionBudgetSpec configures the PodDisruptionBudget.
type PodDisruptionBudgetSpec struct {
	// enabled creates the PodDisruptionBudget.
	// +optional
	// +kubebuilder:default=true
	Enabled *bool `json:"enabled,omitempty"`
	// maxUnavailable pods during a voluntary disruption. With one replica,
	// 0 blocks node drains until the broker is moved by hand.
	// +optional
	// +kubebuilder:default=1
	MaxUnavailable *intstr.IntOrString `json:"maxUnavailable,omitempty"`
}

// MonitoringSpec configures monitoring integrations.
type MonitoringSpec struct {
	// serviceMonitor creates a Prometheus Operator ServiceMonitor for the
	// broker's metrics, when that CRD is installed.
	// +optional
	ServiceMonitor *ServiceMonitorSpec `json:"serviceMonitor,omitempty"`
}

// ServiceMonitorSpec configures the ServiceMonitor.
type ServiceMonitorSpec struct {
	// enabled creates the ServiceMonitor.
	// +optional
	Enabled bool `json:"enabled,omitempty"`
	// interval between scrapes.
	// +optional
	// +kubebuilder:default="30s"
	// +kubebuilder:validation:Pattern=`^([0-9]+(ms|s|m|h))+$`
	Interval string `json:"interval,omitempty"`
	// labels added to the ServiceMonitor (for a Prometheus selector).
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
}

// NetworkPolicySpec shapes the Broker's NetworkPolicy.
type NetworkPolicySpec struct {
	// enabled renders the NetworkPolicy.
	// +optional
	// +kubebuilder:default=true
	Enabled *bool `json:"enabled,omitempty"`

	// adminFrom are peers allowed to the admin port besides the operator's
	// namespace, e.g. the namespace of the Prometheus that scrapes
	// /metrics.
	// +optional
	// +listType=atomic
	AdminFrom []networkingv1.NetworkPolicyPeer `json:"adminFrom,omitempty"`

	// clientFrom are the peers allowed to the MQTT ports; empty allows
	// every source.
	// +optional
	// +listType=atomic
	ClientFrom []networkingv1.NetworkPolicyPeer `json:"clientFrom,omitempty"`
}

// BrokerStatus is the observed state of a Broker.
type BrokerStatus struct {
	// observedGeneration is the generation the status was computed for.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready, Available, AuthSynced, and Paused while paused.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// readyReplicas is the number of ready broker pods.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`

	// endpoints clients use, one per listener.
	// +optional
	// +listType=map
	// +listMapKey=name
	Endpoints []Endpoint `json:"endpoints,omitempty"`

	// authRevision is the revision of the auth bundle the operator last
	// compiled for this Broker; authHash its content hash.
	// +optional
	AuthRevision int64 `json:"authRevision,omitempty"`
	// +optional
	AuthHash string `json:"authHash,omitempty"`

	// pods reports each broker pod and the auth revision it applied.
	// +optional
	// +listType=map
	// +listMapKey=name
	Pods []BrokerPodStatus `json:"pods,omitempty"`
}

// Endpoint is one listener's address.
type Endpoint struct {
	// name of the listener: mqtt, mqtts or ws.
	Name string `json:"name"`
	// address as host:port (the Service's cluster DNS name).
	Address string `json:"address"`
	// url such as mqtt://host:1883 or ws://host:8080/mqtt.
	// +optional
	URL string `json:"url,omitempty"`
}

// BrokerPodStatus is one broker pod.
type BrokerPodStatus struct {
	// name of the pod.
	Name string `json:"name"`
	// ready reports the pod's Ready condition.
	Ready bool `json:"ready"`
	// appliedRevision is the auth bundle revision the pod reported.
	// +optional
	AppliedRevision int64 `json:"appliedRevision,omitempty"`
	// lastError of the last push to the pod, if it failed.
	// +optional
	LastError string `json:"lastError,omitempty"`
}

// Broker is one MQTT broker of one tenant.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=mqttbroker,categories=fleetmq
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Replicas",type=integer,JSONPath=`.status.readyReplicas`
// +kubebuilder:printcolumn:name="Auth",type=integer,JSONPath=`.status.authRevision`,description="Auth bundle revision"
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Broker struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired broker.
	// +optional
	Spec BrokerSpec `json:"spec,omitempty"`
	// status is what the operator observed.
	// +optional
	Status BrokerStatus `json:"status,omitempty"`
}

// BrokerList is a list of Brokers.
//
// +kubebuilder:object:root=true
type BrokerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Broker `json:"items"`
}

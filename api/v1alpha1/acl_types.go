package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ACLAction is what a rule permits or denies. Enum values are PascalCase
// throughout the API, as Kubernetes' own are.
// +kubebuilder:validation:Enum=Publish;Subscribe
type ACLAction string

// Actions.
const (
	ActionPublish   ACLAction = "Publish"
	ActionSubscribe ACLAction = "Subscribe"
)

// ACLEffect is Allow or Deny. A request is allowed when some allow rule
// matches and no deny rule matches, whatever ACL they come from.
// +kubebuilder:validation:Enum=Allow;Deny
type ACLEffect string

// Effects.
const (
	EffectAllow ACLEffect = "Allow"
	EffectDeny  ACLEffect = "Deny"
)

// ACLSubjects are who a rule applies to: any user listed, any member of a
// group listed, or any client whose id matches a pattern (`*` wildcard).
// +kubebuilder:validation:XValidation:rule="size(self.users) + size(self.groups) + size(self.clientIDs) > 0",message="subjects: name at least one user, group or clientID"
type ACLSubjects struct {
	// users by username.
	// +optional
	// +listType=set
	// +kubebuilder:default={}
	// +kubebuilder:validation:MaxItems=1000
	// +kubebuilder:validation:items:MinLength=1
	Users []string `json:"users"`
	// groups by name.
	// +optional
	// +listType=set
	// +kubebuilder:default={}
	// +kubebuilder:validation:MaxItems=1000
	// +kubebuilder:validation:items:MinLength=1
	Groups []string `json:"groups"`
	// clientIDs, exact or with `*` wildcards.
	// +optional
	// +listType=set
	// +kubebuilder:default={}
	// +kubebuilder:validation:MaxItems=1000
	// +kubebuilder:validation:items:MinLength=1
	ClientIDs []string `json:"clientIDs"`
}

// ACLRule permits or denies actions on topic filters to subjects.
type ACLRule struct {
	// subjects the rule applies to.
	// +required
	Subjects ACLSubjects `json:"subjects"`

	// topics are MQTT topic filters; `+` is one whole level, `#` the last
	// level only; `%u` and `%c` expand to the username and client id.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=256
	// +kubebuilder:validation:items:XValidation:rule=`self.matches('^(#|(\\+|[^+#/]*)(/(\\+|[^+#/]*))*(/#)?)$')`,message="'#' is allowed only as the whole last level and '+' only as a whole level (e.g. sensors/+/temp, sensors/#)"
	Topics []string `json:"topics"`

	// actions the rule covers.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +listType=set
	Actions []ACLAction `json:"actions"`

	// effect of the rule.
	// +optional
	// +kubebuilder:default=Allow
	Effect ACLEffect `json:"effect,omitempty"`
}

// ACLSpec is a set of topic permissions on one Broker.
type ACLSpec struct {
	// brokerRef is the Broker, in this namespace, the rules apply to.
	// +required
	BrokerRef BrokerReference `json:"brokerRef"`

	// rules of this ACL. Order does not matter. At most 256 (with 32 topics
	// of 256 bytes each, which keeps the API server's validation cost bounded); split a
	// larger set over several ACLs.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=256
	// +listType=atomic
	Rules []ACLRule `json:"rules"`
}

// ACLStatus is the observed state of an ACL.
type ACLStatus struct {
	// observedGeneration is the generation the status was computed for.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// conditions: Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// ruleCount is the number of rules compiled into the bundle.
	// +optional
	RuleCount int32 `json:"ruleCount,omitempty"`
	// appliedRevision is the first auth bundle revision that contains
	// these rules as they are now, once every ready broker pod has applied it
	// (0 before). It moves only when this object changes, not with every
	// revision of the Broker.
	// +optional
	AppliedRevision int64 `json:"appliedRevision,omitempty"`
}

// ACL is a set of topic permissions on one Broker.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=mqttacl,categories=fleetmq
// +kubebuilder:printcolumn:name="Broker",type=string,JSONPath=`.spec.brokerRef.name`
// +kubebuilder:printcolumn:name="Rules",type=integer,JSONPath=`.status.ruleCount`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ACL struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired permissions.
	// +required
	Spec ACLSpec `json:"spec"`
	// status is what the operator observed.
	// +optional
	Status ACLStatus `json:"status,omitempty"`
}

// ACLList is a list of ACLs.
//
// +kubebuilder:object:root=true
type ACLList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ACL `json:"items"`
}

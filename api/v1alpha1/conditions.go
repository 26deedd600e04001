package v1alpha1

// Condition types and reasons are API: printer columns, Argo CD health
// checks and users' alerts read them. Every condition carries the
// observedGeneration it was computed for.

// Condition types.
const (
	// ConditionReady is true when the object is fully in effect: for a
	// Broker, available and with the current auth bundle on every ready pod;
	// for a User or ACL, applied by every ready pod of its Broker.
	ConditionReady = "Ready"
	// ConditionAvailable is true when the Broker has at least one ready pod
	// serving MQTT.
	ConditionAvailable = "Available"
	// ConditionAuthSynced is true when every ready broker pod has applied
	// the auth bundle revision the operator last compiled.
	ConditionAuthSynced = "AuthSynced"
)

// Reasons of the Broker conditions.
const (
	// ReasonReconciled: the children are in the desired state.
	ReasonReconciled = "Reconciled"
	// ReasonReconcileFailed: applying a child object failed; the message
	// says which and why.
	ReasonReconcileFailed = "ReconcileFailed"
	// ReasonPodsReady / ReasonPodsNotReady: Available, from the StatefulSet.
	ReasonPodsReady    = "PodsReady"
	ReasonPodsNotReady = "PodsNotReady"
	// ReasonTLSSecretNotFound: listeners.tls names a Secret that is missing
	// or lacks tls.crt/tls.key.
	ReasonTLSSecretNotFound = "TLSSecretNotFound"
	// ReasonAuthSynced: every ready pod applied the desired revision.
	ReasonAuthSynced = "Synced"
	// ReasonAuthPending: some ready pod has not applied it yet (a push is
	// pending or being retried).
	ReasonAuthPending = "Pending"
	// ReasonAuthPushFailed: pushing to a pod failed; retried with backoff.
	ReasonAuthPushFailed = "PushFailed"
	// ReasonAdminCertificateUntrusted: a pod's admin API presented a
	// certificate that does not verify against the Broker's CA (not ours,
	// wrong name, expired); nothing is sent to it.
	ReasonAdminCertificateUntrusted = "AdminCertificateUntrusted"
	// ReasonNoReadyPods: nothing to push to yet.
	ReasonNoReadyPods = "NoReadyPods"
	// ReasonPodsNotStarting: a pod cannot start (its container waits in
	// ImagePullBackOff, CrashLoopBackOff…, or it waits for an unbound
	// PersistentVolumeClaim); the message names the pod and the cause.
	// Transient until spec.progressDeadlineSeconds passes.
	ReasonPodsNotStarting = "PodsNotStarting"
	// ReasonProgressDeadlineExceeded: pods did not start, or auth pushes
	// kept failing, for longer than spec.progressDeadlineSeconds. Needs a
	// person (Argo CD: Degraded); the message says what is stuck.
	ReasonProgressDeadlineExceeded = "ProgressDeadlineExceeded"
)

// Reasons of the User and ACL Ready condition.
const (
	// ReasonSynced: every ready pod of the Broker applied a revision that
	// contains this object.
	ReasonSynced = "Synced"
	// ReasonPending: compiled into the bundle, not yet applied everywhere.
	ReasonPending = "Pending"
	// ReasonBrokerNotFound: spec.brokerRef names no Broker in the namespace.
	ReasonBrokerNotFound = "BrokerNotFound"
	// ReasonSecretNotFound: the password Secret or its key is missing.
	ReasonSecretNotFound = "SecretNotFound"
	// ReasonUsernameConflict: an older User on the same Broker has the same
	// username; the oldest keeps it, this one is left out of the bundle.
	ReasonUsernameConflict = "UsernameConflict"
	// ReasonInvalid: the object passed API validation but the broker would
	// refuse it (the message names the field).
	ReasonInvalid = "Invalid"
)

// Pausing reconciliation: AnnotationPaused "true" on a Broker stops the
// operator from changing its children (and its Users' credentials
// Secrets) and from pushing auth bundles, until the annotation goes.
const (
	// AnnotationPaused is the annotation that pauses a Broker.
	AnnotationPaused = "mqtt.fleetmq.io/paused"
	// ConditionPaused is True while the Broker is paused; it is removed
	// when reconciliation resumes.
	ConditionPaused = "Paused"
	// ReasonPaused: AnnotationPaused is "true".
	ReasonPaused = "Paused"
)

// IsPaused reports whether obj carries AnnotationPaused "true".
func IsPaused(obj interface{ GetAnnotations() map[string]string }) bool {
	return obj.GetAnnotations()[AnnotationPaused] == "true"
}

// The generated credentials Secret (User): condition CredentialsSecret is
// False with ReasonCredentialsSecretConflict while a Secret of that name
// exists that the User does not own (the operator never overwrites it),
// and True once that is resolved; absent when there never was a conflict.
const (
	ConditionCredentialsSecret = "CredentialsSecret"
	// ReasonCredentialsSecretConflict: the Secret exists and is not owned
	// by the User.
	ReasonCredentialsSecretConflict = "CredentialsSecretConflict"
	// ReasonCredentialsSecretReady: the Secret is generated and current.
	ReasonCredentialsSecretReady = "CredentialsSecretReady"
)

// Package resource builds the desired state of a Broker's child objects:
// ConfigMap, Secrets, StatefulSet, Services, PodDisruptionBudget and
// ServiceMonitor.
//
// Every builder is a pure function: a Broker (and the few values the
// reconciler owns, such as a generated token) in, one object out. Builders
// never talk to the API server and never set owner references; the
// reconciler does both and applies the objects with server-side apply
// (FieldManager), which is why every object carries its TypeMeta. Output is
// deterministic: the same Broker always yields the same object, so applying
// it again is a no-op and hashes of it are stable.
package resource

import (
	"maps"

	v1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
)

// FieldManager is the server-side apply field manager of the operator.
const FieldManager = "fleetmq-operator"

// Labels and annotations the operator sets.
const (
	LabelName      = "app.kubernetes.io/name"
	LabelInstance  = "app.kubernetes.io/instance"
	LabelManagedBy = "app.kubernetes.io/managed-by"
	LabelComponent = "app.kubernetes.io/component"

	// LabelBroker marks every child object of a Broker, its pods, and the
	// credential Secrets of its Users with the Broker's name, so a watch
	// event maps back to the Broker with no lookup.
	LabelBroker = "mqtt.fleetmq.io/broker"
	// LabelCredentials is "true" on Secrets whose changes the operator must
	// see: the credential Secrets it generates for Users. The operator
	// watches only Secrets carrying it, so a User whose passwordSecretRef
	// names a Secret of its own should label that Secret with
	// mqtt.fleetmq.io/credentials=true too; otherwise a password rotation in
	// it is picked up only at the next resync.
	LabelCredentials = "mqtt.fleetmq.io/credentials"

	// AnnotationConfigHash on the pod template is ConfigHash of the
	// broker's ConfigMap: a config change rolls the pods. Auth changes do
	// not: the broker reloads the auth bundle live.
	AnnotationConfigHash = "mqtt.fleetmq.io/config-hash"
)

// Values of the standard labels.
const (
	appName         = "fleetmq"
	managedBy       = FieldManager
	componentBroker = "broker"
	// ComponentUserCredentials labels the credentials Secrets generated for Users.
	ComponentUserCredentials = "user-credentials"
)

// Ports and names of the broker container.
const (
	// AdminPort serves the admin API, /healthz, /readyz and /metrics. It is
	// on the headless Service only, never on the client Service.
	AdminPort = 8081
	// MetricsPath is where Prometheus scrapes, on AdminPort, with the
	// admin bearer token.
	MetricsPath = "/metrics"

	// Port names, in the container, the Services and the ServiceMonitor.
	PortMQTT      = "mqtt"
	PortMQTTS     = "mqtts"
	PortWebSocket = "ws"
	PortAdmin     = "admin"

	// ContainerName is the broker container in the pod.
	ContainerName = "broker"

	// DefaultMQTTPort, DefaultTLSPort, DefaultWebSocketPort and
	// DefaultWebSocketPath are used when the Broker leaves them zero (the
	// CRD defaults them too; builders do not rely on that).
	DefaultMQTTPort      = 1883
	DefaultTLSPort       = 8883
	DefaultWebSocketPort = 8080
	DefaultWebSocketPath = "/mqtt"
)

// Mount paths inside the broker container and the keys mounted there.
const (
	ConfigDir  = "/etc/fleetmq/config"
	ConfigFile = "broker.yaml"

	AuthDir = "/etc/fleetmq/auth"
	// AuthFile and AuthStateKey are the bundle and the operator's state in
	// the auth Secret of releases before sharding (AuthSecret's manifests
	// replace them); the operator reads them once, to upgrade.
	AuthFile     = "bundle.json"
	AuthStateKey = "state.json"

	AdminDir      = "/etc/fleetmq/admin"
	AdminTokenKey = "token"

	// TLSDir holds the listeners.tls Secret: tls.crt, tls.key and, for
	// client certificates, ca.crt.
	TLSDir = "/etc/fleetmq/tls"
	// TLSCertKey, TLSKeyKey and TLSCAKey are the keys of the TLS Secret
	// (cert-manager's names), hence the file names under TLSDir.
	TLSCertKey = "tls.crt"
	TLSKeyKey  = "tls.key"
	TLSCAKey   = "ca.crt"

	// DataDir holds sessions and retained messages: a PersistentVolumeClaim
	// with spec.persistence, else an emptyDir (which survives container
	// restarts, not pod deletion).
	DataDir = "/var/lib/fleetmq"
)

// Options are the operator-wide settings builders need.
type Options struct {
	// DefaultImage is the broker image of Brokers without spec.image (the
	// operator's --broker-image).
	DefaultImage string
}

// Labels are the selector labels of a Broker's pods. They are part of the
// StatefulSet's immutable selector: never add to them.
func Labels(b *v1alpha1.Broker) map[string]string {
	return map[string]string{
		LabelName:      appName,
		LabelInstance:  b.Name,
		LabelComponent: componentBroker,
	}
}

// ObjectLabels are the labels of every child object of a Broker and of its
// pods: Labels plus LabelManagedBy and LabelBroker.
func ObjectLabels(b *v1alpha1.Broker) map[string]string {
	l := Labels(b)
	l[LabelManagedBy] = managedBy
	l[LabelBroker] = b.Name
	return l
}

// ConfigMapName is the broker's configuration ConfigMap.
func ConfigMapName(b *v1alpha1.Broker) string { return b.Name + "-config" }

// AdminSecretName holds the admin API bearer token.
func AdminSecretName(b *v1alpha1.Broker) string { return b.Name + "-admin" }

// AuthSecretName holds the auth bundle and the operator's bookkeeping.
func AuthSecretName(b *v1alpha1.Broker) string { return b.Name + "-auth" }

// ServiceName is the client Service.
func ServiceName(b *v1alpha1.Broker) string { return b.Name }

// HeadlessServiceName is the StatefulSet's governing Service.
func HeadlessServiceName(b *v1alpha1.Broker) string { return b.Name + "-headless" }

// StatefulSetName is the broker StatefulSet.
func StatefulSetName(b *v1alpha1.Broker) string { return b.Name }

// PodDisruptionBudgetName is the broker pods' PodDisruptionBudget.
func PodDisruptionBudgetName(b *v1alpha1.Broker) string { return b.Name }

// ServiceMonitorName is the broker's ServiceMonitor.
func ServiceMonitorName(b *v1alpha1.Broker) string { return b.Name }

// merge returns base with extra added; keys of base win.
func merge(extra, base map[string]string) map[string]string {
	if len(extra) == 0 && len(base) == 0 {
		return nil
	}
	out := make(map[string]string, len(extra)+len(base))
	maps.Copy(out, extra)
	maps.Copy(out, base)
	return out
}

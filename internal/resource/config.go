package resource

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"maps"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
	"github.com/fleetmq/fleetmq/broker"
	"github.com/fleetmq/fleetmq/broker/config"
)

// BrokerConfig is the broker configuration file rendered from the Broker.
// Everything the broker needs is here; the container gets only --config.
func BrokerConfig(b *v1alpha1.Broker) config.Config {
	// The broker's config file spells levels in lower case.
	level := strings.ToLower(string(b.Spec.LogLevel))
	if level == "" {
		level = "info"
	}
	return config.Config{
		Listeners: config.Listeners{
			MQTT:         ":" + strconv.Itoa(int(mqttPort(b))),
			MQTTDisabled: !mqttEnabled(b),
			Admin:        ":" + strconv.Itoa(AdminPort),
			AdminTLS: &config.TLSFiles{
				CertFile: path.Join(AdminTLSDir, TLSCertKey),
				KeyFile:  path.Join(AdminTLSDir, TLSKeyKey),
			},
			TLS:       tlsListener(b.Spec.Listeners.TLS),
			WebSocket: webSocketListener(b.Spec.Listeners.WebSocket),
		},
		AllowAnonymous:   b.Spec.AllowAnonymous,
		AuthFile:         path.Join(AuthDir, AuthManifestKey),
		AdminTokenFile:   path.Join(AdminDir, AdminTokenKey),
		MetricsTokenFile: path.Join(MetricsDir, MetricsTokenKey),
		DataDir:          DataDir,
		Limits:           brokerLimits(b.Spec.Limits),
		// Refuse and Discard as the broker spells them.
		SessionTakeover: broker.SessionTakeover(strings.ToLower(b.Spec.SessionTakeover)),
		Log:             config.Log{Level: level, Format: "json"},
	}
}

// tlsListener is spec.listeners.tls for the broker: the Secret's files as
// mounted at TLSDir (ca.crt only when client certificates are verified), and
// clientAuth None/Optional/Required as none/optional/required.
func tlsListener(t *v1alpha1.TLSListener) *config.TLSListener {
	if t == nil {
		return nil
	}
	l := &config.TLSListener{
		Addr:                    ":" + strconv.Itoa(int(tlsPort(t))),
		CertFile:                path.Join(TLSDir, TLSCertKey),
		KeyFile:                 path.Join(TLSDir, TLSKeyKey),
		ClientAuth:              strings.ToLower(t.ClientAuth),
		UseCommonNameAsUsername: t.UseCommonNameAsUsername,
	}
	if l.ClientAuth != "" && l.ClientAuth != "none" {
		l.CAFile = path.Join(TLSDir, TLSCAKey)
	}
	return l
}

// webSocketListener is spec.listeners.websocket for the broker: plain
// ws:// (TLS for browsers is usually terminated by an Ingress).
func webSocketListener(w *v1alpha1.WebSocketListener) *config.WebSocketListener {
	if w == nil {
		return nil
	}
	return &config.WebSocketListener{
		Addr: ":" + strconv.Itoa(int(webSocketPort(w))),
		Path: webSocketPath(w),
	}
}

// brokerLimits maps spec.limits onto the broker's; absent fields stay zero,
// which the broker reads as its default. The API bounds every field; values
// past the broker's types are clamped rather than wrapped.
func brokerLimits(l v1alpha1.BrokerLimits) broker.Limits {
	var out broker.Limits
	setInt(&out.MaxConnections, l.MaxConnections)
	setInt(&out.MaxQueuedMessages, l.MaxQueuedMessages)
	setInt(&out.MaxPendingBytes, l.MaxPendingBytes)
	setInt(&out.MaxTopicLength, l.MaxTopicLength)
	setInt(&out.MaxTopicLevels, l.MaxTopicLevels)
	setInt(&out.MaxClientIDLength, l.MaxClientIDLength)
	setInt(&out.MaxUnauthenticated, l.MaxUnauthenticated)
	setInt(&out.MaxSubscriptionsPerClient, l.MaxSubscriptionsPerClient)
	setInt(&out.MaxRetainedPerUser, l.MaxRetainedPerUser)
	setInt(&out.MaxRetainedMessages, l.MaxRetainedMessages)
	setUint(&out.MaxPacketSize, l.MaxPacketSize, math.MaxUint32)
	setUint(&out.MaxConnectPacketSize, l.MaxConnectPacketSize, math.MaxUint32)
	setUint(&out.MaxInflight, l.MaxInflight, math.MaxUint16)
	setUint(&out.MaxKeepAlive, l.MaxKeepAliveSeconds, math.MaxUint16)
	setUint(&out.TopicAliasMaximum, l.TopicAliasMaximum, math.MaxUint16)
	setUint(&out.TopicAliasMaximumOut, l.TopicAliasMaximumOut, math.MaxUint16)
	setUint(&out.ConnectTimeout, l.ConnectTimeoutSeconds, math.MaxUint16)
	setUint(&out.MaxSessionExpiry, l.MaxSessionExpirySeconds, math.MaxUint32)
	if l.MaxRetainedBytesPerUser != nil {
		out.MaxRetainedBytesPerUser = max(*l.MaxRetainedBytesPerUser, 0)
	}
	if l.MaxRetainedBytes != nil {
		out.MaxRetainedBytes = max(*l.MaxRetainedBytes, 0)
	}
	return out
}

// setInt copies a set field into an int limit.
func setInt(dst *int, v *int32) {
	if v != nil {
		*dst = int(*v)
	}
}

// setUint copies a set field into an unsigned limit, clamped to [0, hi].
func setUint[U uint16 | uint32, S int32 | int64](dst *U, v *S, hi int64) {
	if v != nil {
		*dst = U(clamp(int64(*v), hi))
	}
}

func clamp(v, hi int64) int64 {
	return min(max(v, 0), hi)
}

// ConfigMap holds the broker configuration file, ConfigFile, as YAML.
func ConfigMap(b *v1alpha1.Broker) (*corev1.ConfigMap, error) {
	data, err := config.Marshal(BrokerConfig(b))
	if err != nil {
		return nil, fmt.Errorf("render broker config of %s/%s: %w", b.Namespace, b.Name, err)
	}
	return &corev1.ConfigMap{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      ConfigMapName(b),
			Namespace: b.Namespace,
			Labels:    ObjectLabels(b),
		},
		Data: map[string]string{ConfigFile: string(data)},
	}, nil
}

// ConfigHash is the hex SHA-256 of a ConfigMap's data and binaryData,
// independent of map order. It goes into the pod template
// (AnnotationConfigHash) so a config change rolls the pods.
func ConfigHash(cm *corev1.ConfigMap) string {
	h := sha256.New()
	// Length-prefixed fields: no two different maps hash alike.
	field := func(s []byte) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write(s)
	}
	for _, k := range slices.Sorted(maps.Keys(cm.Data)) {
		field([]byte("data"))
		field([]byte(k))
		field([]byte(cm.Data[k]))
	}
	for _, k := range slices.Sorted(maps.Keys(cm.BinaryData)) {
		field([]byte("binaryData"))
		field([]byte(k))
		field(cm.BinaryData[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

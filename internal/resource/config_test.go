package resource

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
	"github.com/fleetmq/fleetmq/broker"
	"github.com/fleetmq/fleetmq/broker/config"
)

// loadConfigMap reads the ConfigMap's file as fleetmq-broker --config does
// (config.Load: defaults, then a strict unmarshal).
func loadConfigMap(t *testing.T, cm *corev1.ConfigMap) config.Config {
	t.Helper()
	data, ok := cm.Data[ConfigFile]
	if !ok {
		t.Fatalf("ConfigMap data has no %s: %v", ConfigFile, cm.Data)
	}
	cfg := config.Default()
	if err := yaml.UnmarshalStrict([]byte(data), &cfg); err != nil {
		t.Fatalf("broker would refuse the config: %v\n%s", err, data)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config invalid: %v\n%s", err, data)
	}
	return cfg
}

func TestConfigMap(t *testing.T) {
	tests := []struct {
		name   string
		broker *v1alpha1.Broker
		want   config.Config
	}{
		{
			name:   "defaults",
			broker: newBroker(),
			want: config.Config{
				Listeners:        config.Listeners{MQTT: ":1883", Admin: ":8081", AdminTLS: adminTLSFiles},
				AuthFile:         "/etc/fleetmq/auth/manifest.json",
				AdminTokenFile:   "/etc/fleetmq/admin/token",
				MetricsTokenFile: "/etc/fleetmq/metrics/token",
				DataDir:          "/var/lib/fleetmq",
				Log:              config.Log{Level: "info", Format: "json"},
			},
		},
		{
			name: "everything set",
			broker: newBroker(withTLS, withWebSocket, func(b *v1alpha1.Broker) {
				b.Spec.Listeners.MQTT.Port = 11883
				b.Spec.AllowAnonymous = true
				b.Spec.LogLevel = v1alpha1.LogLevelDebug
				b.Spec.Persistence = &v1alpha1.PersistenceSpec{}
				b.Spec.Limits = v1alpha1.BrokerLimits{
					MaxConnections:          ptr.To[int32](500),
					MaxPacketSize:           ptr.To[int32](65536),
					MaxInflight:             ptr.To[int32](32),
					MaxQueuedMessages:       ptr.To[int32](2000),
					MaxSessionExpirySeconds: ptr.To[int64](4294967295),

					MaxPendingBytes:           ptr.To[int32](2 << 20),
					MaxTopicLength:            ptr.To[int32](512),
					MaxTopicLevels:            ptr.To[int32](8),
					MaxKeepAliveSeconds:       ptr.To[int32](600),
					MaxClientIDLength:         ptr.To[int32](64),
					TopicAliasMaximum:         ptr.To[int32](10),
					TopicAliasMaximumOut:      ptr.To[int32](4),
					ConnectTimeoutSeconds:     ptr.To[int32](5),
					MaxConnectPacketSize:      ptr.To[int32](4096),
					MaxUnauthenticated:        ptr.To[int32](100),
					MaxSubscriptionsPerClient: ptr.To[int32](50),
					MaxRetainedPerUser:        ptr.To[int32](1000),
					MaxRetainedBytesPerUser:   ptr.To[int64](1 << 20),
					MaxRetainedMessages:       ptr.To[int32](10000),
					MaxRetainedBytes:          ptr.To[int64](64 << 20),
				}
				b.Spec.SessionTakeover = "Discard"
			}),
			want: config.Config{
				Listeners: config.Listeners{
					AdminTLS: adminTLSFiles,
					MQTT:     ":11883", Admin: ":8081",
					TLS:       &config.TLSListener{Addr: ":8883", CertFile: "/etc/fleetmq/tls/tls.crt", KeyFile: "/etc/fleetmq/tls/tls.key"},
					WebSocket: &config.WebSocketListener{Addr: ":8080", Path: "/mqtt"},
				},
				AllowAnonymous:   true,
				AuthFile:         "/etc/fleetmq/auth/manifest.json",
				AdminTokenFile:   "/etc/fleetmq/admin/token",
				MetricsTokenFile: "/etc/fleetmq/metrics/token",
				DataDir:          "/var/lib/fleetmq",
				Limits: broker.Limits{
					MaxConnections:    500,
					MaxPacketSize:     65536,
					MaxInflight:       32,
					MaxQueuedMessages: 2000,
					MaxSessionExpiry:  4294967295,

					MaxPendingBytes:           2 << 20,
					MaxTopicLength:            512,
					MaxTopicLevels:            8,
					MaxKeepAlive:              600,
					MaxClientIDLength:         64,
					TopicAliasMaximum:         10,
					TopicAliasMaximumOut:      4,
					ConnectTimeout:            5,
					MaxConnectPacketSize:      4096,
					MaxUnauthenticated:        100,
					MaxSubscriptionsPerClient: 50,
					MaxRetainedPerUser:        1000,
					MaxRetainedBytesPerUser:   1 << 20,
					MaxRetainedMessages:       10000,
					MaxRetainedBytes:          64 << 20,
				},
				SessionTakeover: broker.SessionTakeoverDiscard,
				Log:             config.Log{Level: "debug", Format: "json"},
			},
		},
		{
			name: "mutual TLS with the certificate's CN as username, WebSocket on its own path",
			broker: newBroker(func(b *v1alpha1.Broker) {
				b.Spec.Listeners.TLS = &v1alpha1.TLSListener{Port: 18883, SecretName: "acme-tls", ClientAuth: "Required", UseCommonNameAsUsername: true}
				b.Spec.Listeners.WebSocket = &v1alpha1.WebSocketListener{Port: 9001, Path: "/ws"}
			}),
			want: config.Config{
				Listeners: config.Listeners{
					AdminTLS: adminTLSFiles,
					MQTT:     ":1883", Admin: ":8081",
					TLS: &config.TLSListener{Addr: ":18883", CertFile: "/etc/fleetmq/tls/tls.crt", KeyFile: "/etc/fleetmq/tls/tls.key",
						CAFile: "/etc/fleetmq/tls/ca.crt", ClientAuth: "required", UseCommonNameAsUsername: true},
					WebSocket: &config.WebSocketListener{Addr: ":9001", Path: "/ws"},
				},
				AuthFile:         "/etc/fleetmq/auth/manifest.json",
				AdminTokenFile:   "/etc/fleetmq/admin/token",
				MetricsTokenFile: "/etc/fleetmq/metrics/token",
				DataDir:          "/var/lib/fleetmq",
				Log:              config.Log{Level: "info", Format: "json"},
			},
		},
		{
			name: "optional client certificates",
			broker: newBroker(func(b *v1alpha1.Broker) {
				b.Spec.Listeners.TLS = &v1alpha1.TLSListener{SecretName: "acme-tls", ClientAuth: "Optional"}
			}),
			want: config.Config{
				Listeners: config.Listeners{
					AdminTLS: adminTLSFiles,
					MQTT:     ":1883", Admin: ":8081",
					TLS: &config.TLSListener{Addr: ":8883", CertFile: "/etc/fleetmq/tls/tls.crt", KeyFile: "/etc/fleetmq/tls/tls.key",
						CAFile: "/etc/fleetmq/tls/ca.crt", ClientAuth: "optional"},
				},
				AuthFile:         "/etc/fleetmq/auth/manifest.json",
				AdminTokenFile:   "/etc/fleetmq/admin/token",
				MetricsTokenFile: "/etc/fleetmq/metrics/token",
				DataDir:          "/var/lib/fleetmq",
				Log:              config.Log{Level: "info", Format: "json"},
			},
		},
		{
			name: "clientAuth None needs no CA",
			broker: newBroker(func(b *v1alpha1.Broker) {
				b.Spec.Listeners.TLS = &v1alpha1.TLSListener{SecretName: "acme-tls", ClientAuth: "None"}
			}),
			want: config.Config{
				Listeners: config.Listeners{
					AdminTLS: adminTLSFiles,
					MQTT:     ":1883", Admin: ":8081",
					TLS: &config.TLSListener{Addr: ":8883", CertFile: "/etc/fleetmq/tls/tls.crt", KeyFile: "/etc/fleetmq/tls/tls.key", ClientAuth: "none"},
				},
				AuthFile:         "/etc/fleetmq/auth/manifest.json",
				AdminTokenFile:   "/etc/fleetmq/admin/token",
				MetricsTokenFile: "/etc/fleetmq/metrics/token",
				DataDir:          "/var/lib/fleetmq",
				Log:              config.Log{Level: "info", Format: "json"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cm, err := ConfigMap(tt.broker)
			if err != nil {
				t.Fatalf("ConfigMap: %v", err)
			}
			if cm.Name != "acme-config" || cm.Namespace != "tenant-a" {
				t.Errorf("ConfigMap is %s/%s, want tenant-a/acme-config", cm.Namespace, cm.Name)
			}
			if got := BrokerConfig(tt.broker); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("BrokerConfig =\n%+v\nwant\n%+v", got, tt.want)
			}
			if got := loadConfigMap(t, cm); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("config read back =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestConfigMapDeterministic(t *testing.T) {
	b := newBroker(withTLS, func(b *v1alpha1.Broker) {
		b.Spec.Limits.MaxConnections = ptr.To[int32](10)
	})
	first, err := ConfigMap(b)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		cm, err := ConfigMap(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(cm, first) || ConfigHash(cm) != ConfigHash(first) {
			t.Fatalf("ConfigMap differs between calls:\n%v\n%v", cm.Data, first.Data)
		}
	}
}

// TestConfigHash: the hash follows what the broker reads from its config
// file and nothing else. Pod metadata, scheduling, image and Service
// changes reach the pods (or not) through the pod template itself, and the
// auth bundle is reloaded live.
func TestConfigHash(t *testing.T) {
	hash := func(t *testing.T, b *v1alpha1.Broker) string {
		t.Helper()
		cm, err := ConfigMap(b)
		if err != nil {
			t.Fatal(err)
		}
		return ConfigHash(cm)
	}
	base := hash(t, newBroker())
	tests := []struct {
		name    string
		mutate  func(*v1alpha1.Broker)
		changes bool
	}{
		{"limits.maxConnections", func(b *v1alpha1.Broker) { b.Spec.Limits.MaxConnections = ptr.To[int32](10) }, true},
		{"limits.maxInflight", func(b *v1alpha1.Broker) { b.Spec.Limits.MaxInflight = ptr.To[int32](10) }, true},
		{"logLevel", func(b *v1alpha1.Broker) { b.Spec.LogLevel = v1alpha1.LogLevelWarn }, true},
		{"allowAnonymous", func(b *v1alpha1.Broker) { b.Spec.AllowAnonymous = true }, true},
		{"listeners.mqtt.port", func(b *v1alpha1.Broker) { b.Spec.Listeners.MQTT.Port = 1884 }, true},
		{"listeners.tls", withTLS, true},
		{"listeners.websocket", withWebSocket, true},
		{"listeners.websocket.path", func(b *v1alpha1.Broker) { b.Spec.Listeners.WebSocket = &v1alpha1.WebSocketListener{Path: "/ws"} }, true},
		{"logLevel info is the default", func(b *v1alpha1.Broker) { b.Spec.LogLevel = v1alpha1.LogLevelInfo }, false},
		{"listeners.mqtt.port 1883 is the default", func(b *v1alpha1.Broker) { b.Spec.Listeners.MQTT.Port = 1883 }, false},
		{"pod.labels", func(b *v1alpha1.Broker) { b.Spec.Pod.Labels = map[string]string{"team": "iot"} }, false},
		{"pod.annotations", func(b *v1alpha1.Broker) { b.Spec.Pod.Annotations = map[string]string{"a": "b"} }, false},
		{"image", func(b *v1alpha1.Broker) { b.Spec.Image = "example/broker:2" }, false},
		{"replicas", func(b *v1alpha1.Broker) { b.Spec.Replicas = ptr.To[int32](1) }, false},
		{"service.type", func(b *v1alpha1.Broker) { b.Spec.Service.Type = corev1.ServiceTypeLoadBalancer }, false},
		{"resources", func(b *v1alpha1.Broker) {
			b.Spec.Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}
		}, false},
		{"monitoring", func(b *v1alpha1.Broker) {
			b.Spec.Monitoring.ServiceMonitor = &v1alpha1.ServiceMonitorSpec{Enabled: true}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := hash(t, newBroker(tt.mutate))
			if changed := got != base; changed != tt.changes {
				t.Errorf("hash changed = %v, want %v (base %s, got %s)", changed, tt.changes, base, got)
			}
		})
	}
}

func TestConfigHashOfData(t *testing.T) {
	tests := []struct {
		name string
		a, b *corev1.ConfigMap
		same bool
	}{
		{"same data", &corev1.ConfigMap{Data: map[string]string{"x": "1", "y": "2"}}, &corev1.ConfigMap{Data: map[string]string{"y": "2", "x": "1"}}, true},
		{"metadata ignored", &corev1.ConfigMap{Data: map[string]string{"x": "1"}}, func() *corev1.ConfigMap {
			cm := &corev1.ConfigMap{Data: map[string]string{"x": "1"}}
			cm.Labels = map[string]string{"l": "v"}
			return cm
		}(), true},
		{"value differs", &corev1.ConfigMap{Data: map[string]string{"x": "1"}}, &corev1.ConfigMap{Data: map[string]string{"x": "2"}}, false},
		{"key/value boundary", &corev1.ConfigMap{Data: map[string]string{"ab": "c"}}, &corev1.ConfigMap{Data: map[string]string{"a": "bc"}}, false},
		{"data vs binaryData", &corev1.ConfigMap{Data: map[string]string{"x": "1"}}, &corev1.ConfigMap{BinaryData: map[string][]byte{"x": []byte("1")}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ha, hb := ConfigHash(tt.a), ConfigHash(tt.b)
			if (ha == hb) != tt.same {
				t.Errorf("hashes equal = %v, want %v (%s, %s)", ha == hb, tt.same, ha, hb)
			}
			if len(ha) != 64 {
				t.Errorf("hash %q: want 64 hex digits", ha)
			}
		})
	}
}

// adminTLSFiles is where every broker finds its admin serving certificate.
var adminTLSFiles = &config.TLSFiles{CertFile: "/etc/fleetmq/admin-tls/tls.crt", KeyFile: "/etc/fleetmq/admin-tls/tls.key"}

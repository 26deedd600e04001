// Package config is the broker's configuration file: the YAML the operator
// renders into a ConfigMap and fleetmq-broker reads with --config. Both
// sides import this one type, so the schema cannot drift.
package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/fleetmq/fleetmq/broker"
)

// Config is the whole broker configuration.
type Config struct {
	// Listeners are the addresses the broker serves.
	Listeners Listeners `json:"listeners,omitempty"`
	// AllowAnonymous accepts clients without a username.
	AllowAnonymous bool `json:"allowAnonymous,omitempty"`
	// AuthFile is the auth bundle (JSON), watched and reloaded on change.
	AuthFile string `json:"authFile,omitempty"`
	// AdminTokenFile holds the bearer token the admin API requires.
	AdminTokenFile string `json:"adminTokenFile,omitempty"`
	// MetricsTokenFile holds a second bearer token that reads /metrics and
	// nothing else, so a scraper never holds write access to auth.
	MetricsTokenFile string `json:"metricsTokenFile,omitempty"`
	// DataDir is where sessions and retained messages persist; empty keeps
	// them in memory.
	DataDir string `json:"dataDir,omitempty"`
	// DataDirResetCorrupt moves a corrupt data directory aside
	// (<dir>.corrupt-<timestamp>) and starts empty instead of refusing to
	// start. Flag only (--data-dir-reset-corrupt): an operator's decision.
	DataDirResetCorrupt bool `json:"-"`
	// Limits bound clients and the broker; zero fields take defaults.
	Limits broker.Limits `json:"limits,omitempty"`
	// Log configures logging.
	Log Log `json:"log,omitempty"`
	// ResponseTopicPrefix is sent to v5 clients that request response
	// information, followed by their client id and "/"; empty sends none.
	ResponseTopicPrefix string `json:"responseTopicPrefix,omitempty"`
	// SysInterval is how often $SYS statistics are published (Go duration;
	// "0s" or empty: 10s; negative disables).
	SysInterval Duration `json:"sysInterval,omitempty"`
	// SessionTakeover is what a CONNECT gets for a client id whose session
	// another user owns: refuse (default) or discard (the old session ends
	// and the newcomer starts a fresh one).
	SessionTakeover broker.SessionTakeover `json:"sessionTakeover,omitempty"`
	// Cluster makes this broker one node of a cluster sharing one topic
	// space; absent, it runs alone.
	Cluster *Cluster `json:"cluster,omitempty"`
}

// Cluster places the broker in a cluster of brokers (broker/cluster).
type Cluster struct {
	// Name is the cluster's name, the same on every node (the Broker's).
	Name string `json:"name"`
	// NodeName is this node's name, unique in the cluster; default the
	// host name, which is the pod name in a StatefulSet.
	NodeName string `json:"nodeName,omitempty"`
	// Listen is the route listener's address (default ":6222").
	Listen string `json:"listen,omitempty"`
	// Peers are the route addresses of every node, this one's included
	// or not (host:port; DNS names resolve at each connection attempt).
	Peers []string `json:"peers"`
	// CredentialsFile holds "username:password", the routes' credentials
	// both ways (a mounted Secret).
	CredentialsFile string `json:"credentialsFile"`
}

// DefaultClusterListen is the route listener's default address.
const DefaultClusterListen = ":6222"

func (c *Cluster) validate() []error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("cluster.name: required"))
	}
	if c.CredentialsFile == "" {
		errs = append(errs, errors.New("cluster.credentialsFile: required, so that nothing without the credentials can join"))
	}
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			errs = append(errs, fmt.Errorf("cluster.listen %q: %w", c.Listen, err))
		}
	}
	for _, p := range c.Peers {
		if _, _, err := net.SplitHostPort(p); err != nil {
			errs = append(errs, fmt.Errorf("cluster.peers %q: %w", p, err))
		}
	}
	return errs
}

// Listeners are the broker's network endpoints.
type Listeners struct {
	// MQTT is the plain TCP listener address (default ":1883").
	MQTT string `json:"mqtt,omitempty"`
	// MQTTDisabled turns the plain TCP listener off (an mTLS-only broker
	// must not accept passwords in clear); TLS or WebSocket must remain.
	MQTTDisabled bool `json:"mqttDisabled,omitempty"`
	// Admin is the admin API, health and metrics address (default ":8081").
	Admin string `json:"admin,omitempty"`
	// AdminTLS serves the admin API over TLS when set.
	AdminTLS *TLSFiles `json:"adminTLS,omitempty"`
	// TLS is the MQTT-over-TLS listener; none when absent.
	TLS *TLSListener `json:"tls,omitempty"`
	// WebSocket is the MQTT-over-WebSocket listener; none when absent.
	WebSocket *WebSocketListener `json:"websocket,omitempty"`
}

// TLSListener serves MQTT over TLS. The files are watched and reloaded when
// they change (cert-manager rotating a mounted Secret).
type TLSListener struct {
	// Addr is the listen address (default ":8883").
	Addr string `json:"addr,omitempty"`
	// CertFile and KeyFile are the server certificate and key, PEM.
	CertFile string `json:"certFile"`
	KeyFile  string `json:"keyFile"`
	// CAFile holds the CA certificates client certificates are verified
	// against; required when ClientAuth is optional or required.
	CAFile string `json:"caFile,omitempty"`
	// ClientAuth is none (default), optional (verify a certificate when the
	// client presents one) or required.
	ClientAuth string `json:"clientAuth,omitempty"`
	// UseCommonNameAsUsername makes a verified client certificate the
	// credential: its subject CN is the username, no password is needed,
	// and the CONNECT's username and password are ignored. Needs ClientAuth
	// optional or required.
	UseCommonNameAsUsername bool `json:"useCommonNameAsUsername,omitempty"`
}

// WebSocketListener serves MQTT over WebSocket (subprotocol "mqtt").
type WebSocketListener struct {
	// Addr is the listen address (default ":8080").
	Addr string `json:"addr,omitempty"`
	// Path is the URL path of the endpoint (default "/mqtt").
	Path string `json:"path,omitempty"`
	// TLS serves wss:// with listeners.tls's certificate and client
	// certificate mode (never its useCommonNameAsUsername).
	TLS bool `json:"tls,omitempty"`
}

// TLSFiles name a certificate and its key (PEM), as cert-manager writes them.
type TLSFiles struct {
	CertFile string `json:"certFile"`
	KeyFile  string `json:"keyFile"`
}

// Log configures the logger.
type Log struct {
	// Level is debug, info, warn or error (default info).
	Level string `json:"level,omitempty"`
	// Format is text or json (default json).
	Format string `json:"format,omitempty"`
}

// Duration is a time.Duration written as a Go duration string in YAML.
type Duration struct{ time.Duration }

// MarshalJSON writes the duration as a string such as "10s".
func (d Duration) MarshalJSON() ([]byte, error) { return []byte(`"` + d.String() + `"`), nil }

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	d.Duration = v
	return nil
}

// Default is the configuration with no file and no flags.
func Default() Config {
	return Config{
		Listeners: Listeners{MQTT: ":1883", Admin: ":8081"},
		Log:       Log{Level: "info", Format: "json"},
	}
}

// Load reads a YAML file over the defaults. Unknown fields are an error,
// so a typo in a ConfigMap is caught at start, not ignored.
func Load(path string) (Config, error) {
	cfg := Default()
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	// Strict and case-sensitive: "maxInFlight" is a typo, not maxInflight.
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	strict, err := sigsjson.UnmarshalStrict(js, &cfg, sigsjson.DisallowDuplicateFields, sigsjson.DisallowUnknownFields)
	if err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	if len(strict) > 0 {
		return cfg, fmt.Errorf("config %s: %w", path, errors.Join(strict...))
	}
	return cfg, nil
}

// Marshal renders cfg as YAML (the operator writes this into a ConfigMap).
func Marshal(cfg Config) ([]byte, error) { return yaml.Marshal(cfg) }

// validateMQTT checks the TLS and WebSocket listeners.
func (l Listeners) validateMQTT() []error {
	var errs []error
	checkAddr := func(name, addr string) {
		if addr == "" {
			return
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", name, addr, err))
		}
	}
	if t := l.TLS; t != nil {
		checkAddr("listeners.tls.addr", t.Addr)
		if t.CertFile == "" || t.KeyFile == "" {
			errs = append(errs, errors.New("listeners.tls: certFile and keyFile are both required"))
		}
		switch t.ClientAuth {
		case "", "none":
			if t.UseCommonNameAsUsername {
				errs = append(errs, errors.New("listeners.tls.useCommonNameAsUsername: needs clientAuth optional or required"))
			}
		case "optional", "required":
			if t.CAFile == "" {
				errs = append(errs, fmt.Errorf("listeners.tls.caFile: required with clientAuth %s", t.ClientAuth))
			}
		default:
			errs = append(errs, fmt.Errorf("listeners.tls.clientAuth %q: want none, optional or required", t.ClientAuth))
		}
	}
	if w := l.WebSocket; w != nil {
		checkAddr("listeners.websocket.addr", w.Addr)
		if w.Path != "" && !strings.HasPrefix(w.Path, "/") {
			errs = append(errs, fmt.Errorf("listeners.websocket.path %q: must start with /", w.Path))
		}
		if w.TLS && l.TLS == nil {
			errs = append(errs, errors.New("listeners.websocket.tls: needs listeners.tls (its certificate)"))
		}
	}
	return errs
}

// Validate names the first setting that cannot work.
func (c Config) Validate() error {
	var errs []error
	for name, addr := range map[string]string{"listeners.mqtt": c.Listeners.MQTT, "listeners.admin": c.Listeners.Admin} {
		if addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", name, addr, err))
		}
	}
	if t := c.Listeners.AdminTLS; t != nil && (t.CertFile == "" || t.KeyFile == "") {
		errs = append(errs, errors.New("listeners.adminTLS: certFile and keyFile are both required"))
	}
	if c.Listeners.MQTTDisabled && c.Listeners.TLS == nil && c.Listeners.WebSocket == nil {
		errs = append(errs, errors.New("listeners.mqttDisabled: needs listeners.tls or listeners.websocket, or no client could connect"))
	}
	errs = append(errs, c.Listeners.validateMQTT()...)
	if err := c.Limits.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("limits: %w", err))
	}
	if err := c.SessionTakeover.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Cluster != nil {
		errs = append(errs, c.Cluster.validate()...)
	}
	switch c.Log.Level {
	case "", "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level %q: want debug, info, warn or error", c.Log.Level))
	}
	switch c.Log.Format {
	case "", "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log.format %q: want text or json", c.Log.Format))
	}
	return errors.Join(errs...)
}

// Command fleetmq-broker runs the fleetmq MQTT broker.
//
//	fleetmq-broker [--config FILE] [--mqtt-addr ADDR] [--admin-addr ADDR] ...
//	fleetmq-broker passwd < password
//
// An invalid flag or file prints one line naming the problem and exits 2.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/fleetmq/fleetmq/broker"
	"github.com/fleetmq/fleetmq/broker/admin"
	"github.com/fleetmq/fleetmq/broker/authz"
	"github.com/fleetmq/fleetmq/broker/config"
	"github.com/fleetmq/fleetmq/broker/store"
)

// version is set by the build (-ldflags "-X main.version=...").
var version = "dev"

// usageError is a bad flag or file: exit code 2. Its message is one line:
// several problems (errors.Join) are separated by "; ".
type usageError struct{ err error }

func (e usageError) Error() string {
	return strings.ReplaceAll(strings.TrimSpace(e.err.Error()), "\n", "; ")
}

func (e usageError) Unwrap() error { return e.err }

func main() {
	err := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	var ue usageError
	switch {
	case err == nil:
	case errors.As(err, &ue):
		fmt.Fprintln(os.Stderr, "fleetmq-broker:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "fleetmq-broker:", err)
		os.Exit(1)
	}
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "passwd" {
		return runPasswd(args[1:], stdin, stdout)
	}
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log, stderr)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return serve(ctx, cfg, log)
}

// parseFlags reads --config, then lets every flag given override the file.
func parseFlags(args []string, stderr io.Writer) (config.Config, error) {
	fs := flag.NewFlagSet("fleetmq-broker", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	configFile := fs.String("config", "", "YAML configuration file")
	mqttAddr := fs.String("mqtt-addr", ":1883", "plain MQTT listener address")
	adminAddr := fs.String("admin-addr", ":8081", "admin API, health and metrics address")
	tokenFile := fs.String("admin-token-file", "", "file holding the admin API bearer token")
	metricsTokenFile := fs.String("metrics-token-file", "", "file holding a bearer token that reads /metrics only")
	adminTLSCert := fs.String("admin-tls-cert", "", "serve the admin API over TLS with this certificate (PEM), reloaded when it changes")
	adminTLSKey := fs.String("admin-tls-key", "", "key (PEM) of --admin-tls-cert, reloaded when it changes")
	mqttDisabled := fs.Bool("mqtt-disabled", false, "no plain MQTT listener (keep TLS or WebSocket)")
	authFile := fs.String("auth-file", "", "auth bundle (JSON), watched and reloaded")
	anonymous := fs.Bool("allow-anonymous", false, "accept clients without credentials")
	dataDir := fs.String("data-dir", "", "directory for persistent sessions and retained messages")
	resetCorrupt := fs.Bool("data-dir-reset-corrupt", false, "move a corrupt --data-dir aside (<dir>.corrupt-<timestamp>) and start empty")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logFormat := fs.String("log-format", "json", "text or json")
	showVersion := fs.Bool("version", false, "print the version and exit")
	lf := addListenerFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stderr)
			fs.PrintDefaults()
		}
		return config.Config{}, usageError{err}
	}
	if fs.NArg() > 0 {
		return config.Config{}, usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if *showVersion {
		fmt.Fprintln(stderr, "fleetmq-broker", version)
		os.Exit(0)
	}
	cfg := config.Default()
	if *configFile != "" {
		var err error
		if cfg, err = config.Load(*configFile); err != nil {
			return cfg, usageError{err}
		}
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "mqtt-addr":
			cfg.Listeners.MQTT = *mqttAddr
		case "admin-addr":
			cfg.Listeners.Admin = *adminAddr
		case "admin-token-file":
			cfg.AdminTokenFile = *tokenFile
		case "metrics-token-file":
			cfg.MetricsTokenFile = *metricsTokenFile
		case "admin-tls-cert", "admin-tls-key":
			if cfg.Listeners.AdminTLS == nil {
				cfg.Listeners.AdminTLS = &config.TLSFiles{}
			}
			if f.Name == "admin-tls-cert" {
				cfg.Listeners.AdminTLS.CertFile = *adminTLSCert
			} else {
				cfg.Listeners.AdminTLS.KeyFile = *adminTLSKey
			}
		case "mqtt-disabled":
			cfg.Listeners.MQTTDisabled = *mqttDisabled
		case "auth-file":
			cfg.AuthFile = *authFile
		case "allow-anonymous":
			cfg.AllowAnonymous = *anonymous
		case "data-dir":
			cfg.DataDir = *dataDir
		case "data-dir-reset-corrupt":
			cfg.DataDirResetCorrupt = *resetCorrupt
		case "log-level":
			cfg.Log.Level = *logLevel
		case "log-format":
			cfg.Log.Format = *logFormat
		default:
			lf.apply(&cfg, f.Name)
		}
	})
	if err := cfg.Validate(); err != nil {
		return cfg, usageError{err}
	}
	return cfg, nil
}

func newLogger(l config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(l.Level))
	opts := &slog.HandlerOptions{Level: level}
	if l.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// serve runs the broker and its admin API until ctx ends, then shuts down
// gracefully: listeners close, v5 clients get DISCONNECT 0x8B, output is
// flushed.
func serve(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	var st store.Store
	var bolt *store.Bolt
	if cfg.DataDir != "" {
		b, err := openStore(cfg.DataDir, cfg.DataDirResetCorrupt, log)
		if err != nil {
			return err
		}
		st, bolt = b, b
		if s := b.Stats(); s.Replayed > 0 || s.TornBytes > 0 {
			log.Warn("Store: replayed the write-ahead log (the broker did not stop cleanly last time)",
				"dir", cfg.DataDir, "writes", s.Replayed, "tornBytesDropped", s.TornBytes)
		}
	}
	clusterCfg, err := clusterConfig(cfg.Cluster, log)
	if err != nil {
		if st != nil {
			st.Close()
		}
		return usageError{err}
	}
	srv, err := broker.New(broker.Options{
		Cluster:             clusterCfg,
		Limits:              cfg.Limits,
		AllowAnonymous:      cfg.AllowAnonymous,
		SysInterval:         cfg.SysInterval.Duration,
		ResponseTopicPrefix: cfg.ResponseTopicPrefix,
		SessionTakeover:     cfg.SessionTakeover,
		Version:             version,
		Logger:              log,
		Store:               st,
	})
	if err != nil {
		if st != nil {
			st.Close()
		}
		return usageError{err}
	}
	metrics := admin.NewMetrics(srv)
	if bolt != nil {
		metrics.WatchStore(bolt)
	}
	loader := admin.NewLoader(srv, log, metrics)
	if cfg.AuthFile != "" {
		// A bad bundle at start is a bad file: refuse to start rather than
		// run with rules nobody asked for.
		_, err := loader.LoadFile(cfg.AuthFile)
		switch {
		case errors.Is(err, authz.ErrInconsistent):
			// Shards mid-update: stay unready; WatchFile loads the
			// bundle once the kubelet has written it whole.
			log.Warn("Auth bundle shards not consistent yet; not ready until they are", "err", err)
		case err != nil:
			return usageError{err}
		}
		if err := loader.WatchFile(ctx, cfg.AuthFile); err != nil {
			return err
		}
	}

	errc := make(chan error, 4)
	if cfg.Listeners.MQTTDisabled {
		log.Info("Plain MQTT listener disabled", "version", version)
	} else {
		ln, err := net.Listen("tcp", cfg.Listeners.MQTT)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", cfg.Listeners.MQTT, err)
		}
		log.Info("MQTT listener started", "addr", ln.Addr().String(), "version", version)
		go func() { errc <- srv.Serve(ctx, ln) }()
	}
	if err := serveListeners(ctx, cfg.Listeners, srv, log, errc); err != nil {
		return err
	}

	adminSrv, err := serveAdmin(ctx, cfg, loader, metrics, log, errc)
	if err != nil {
		return err
	}

	select {
	case err := <-errc:
		if err != nil && !errors.Is(err, broker.ErrServerClosed) && ctx.Err() == nil {
			return err
		}
	case <-ctx.Done():
	}
	log.Info("Shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if adminSrv != nil {
		if err := adminSrv.Shutdown(sctx); err != nil {
			log.Warn("Admin API shutdown", "err", err)
		}
	}
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("Stopped")
	return nil
}

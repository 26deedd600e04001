package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/fleetmq/fleetmq/broker/admin"
	"github.com/fleetmq/fleetmq/broker/config"
	"github.com/fleetmq/fleetmq/broker/listeners"
)

// serveAdmin starts the admin API (nil when cfg has no admin address),
// over TLS when cfg.Listeners.AdminTLS names a certificate. The certificate
// files are watched and reloaded like the MQTT TLS listener's, so the
// operator's renewals reach the pod without a restart.
func serveAdmin(ctx context.Context, cfg config.Config, loader *admin.Loader, metrics *admin.Metrics, log *slog.Logger, errc chan<- error) (*http.Server, error) {
	if cfg.Listeners.Admin == "" {
		return nil, nil
	}
	h, err := admin.NewHandler(admin.HandlerOptions{
		Loader: loader, Metrics: metrics, TokenFile: cfg.AdminTokenFile, MetricsTokenFile: cfg.MetricsTokenFile,
		AllowAnonymous: cfg.AllowAnonymous, Log: log,
	})
	if err != nil {
		return nil, usageError{err}
	}
	if cfg.AdminTokenFile == "" {
		log.Warn("No --admin-token-file: the admin API answers only /healthz and /readyz")
	}
	var tlsCfg *tls.Config
	if t := cfg.Listeners.AdminTLS; t != nil {
		lt, err := listeners.NewTLS(listeners.TLSOptions{CertFile: t.CertFile, KeyFile: t.KeyFile, Log: log})
		if err != nil {
			return nil, usageError{fmt.Errorf("listeners.adminTLS: %w", err)}
		}
		if err := lt.Watch(ctx); err != nil {
			return nil, err
		}
		tlsCfg = lt.Config()
		leaf := lt.Certificate()
		log.Info("Admin API certificate loaded", "subject", leaf.Subject.String(), "dnsNames", leaf.DNSNames, "notAfter", leaf.NotAfter)
	}
	// One server for plain HTTP and TLS alike: the same timeouts and limits.
	srv := admin.NewHTTPServer(h, admin.ServerOptions{Log: log, Metrics: metrics})
	ln, err := net.Listen("tcp", cfg.Listeners.Admin)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listeners.Admin, err)
	}
	// Counted refusals see the raw connection, below TLS (as ServeTLS
	// would wrap it).
	ln = admin.Listener(ln)
	log.Info("Admin API started", "addr", ln.Addr().String(), "tls", tlsCfg != nil)
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("admin API: %w", err)
		}
	}()
	return srv, nil
}

package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"

	"github.com/fleetmq/fleetmq/broker"
	"github.com/fleetmq/fleetmq/broker/config"
	"github.com/fleetmq/fleetmq/broker/listeners"
)

// Default addresses of the optional listeners (the operator's default
// ports).
const (
	defaultTLSAddr       = ":8883"
	defaultWebSocketAddr = ":8080"
)

// listenerFlags are the flags of the TLS and WebSocket listeners.
type listenerFlags struct {
	tlsAddr, tlsCert, tlsKey, tlsCA, tlsClientAuth *string
	tlsCN                                          *bool
	wsAddr, wsPath                                 *string
	wsTLS                                          *bool
}

func addListenerFlags(fs *flag.FlagSet) *listenerFlags {
	return &listenerFlags{
		tlsAddr:       fs.String("tls-addr", defaultTLSAddr, "MQTT over TLS listener address (with --tls-cert and --tls-key)"),
		tlsCert:       fs.String("tls-cert", "", "TLS certificate file (PEM), reloaded when it changes"),
		tlsKey:        fs.String("tls-key", "", "TLS key file (PEM), reloaded when it changes"),
		tlsCA:         fs.String("tls-ca", "", "CA file (PEM) client certificates are verified against"),
		tlsClientAuth: fs.String("tls-client-auth", "none", "client certificates: none, optional or required"),
		tlsCN:         fs.Bool("tls-cn-username", false, "a verified client certificate's CN is the username (no password)"),
		wsAddr:        fs.String("ws-addr", defaultWebSocketAddr, "MQTT over WebSocket listener address"),
		wsPath:        fs.String("ws-path", listeners.DefaultWebSocketPath, "MQTT over WebSocket URL path"),
		wsTLS:         fs.Bool("ws-tls", false, "serve WebSocket over TLS with the TLS listener's certificate"),
	}
}

// apply sets the flag called name, if it is one of these, over cfg.
func (lf *listenerFlags) apply(cfg *config.Config, name string) {
	tlsL := func() *config.TLSListener {
		if cfg.Listeners.TLS == nil {
			cfg.Listeners.TLS = &config.TLSListener{}
		}
		return cfg.Listeners.TLS
	}
	wsL := func() *config.WebSocketListener {
		if cfg.Listeners.WebSocket == nil {
			cfg.Listeners.WebSocket = &config.WebSocketListener{}
		}
		return cfg.Listeners.WebSocket
	}
	switch name {
	case "tls-addr":
		tlsL().Addr = *lf.tlsAddr
	case "tls-cert":
		tlsL().CertFile = *lf.tlsCert
	case "tls-key":
		tlsL().KeyFile = *lf.tlsKey
	case "tls-ca":
		tlsL().CAFile = *lf.tlsCA
	case "tls-client-auth":
		tlsL().ClientAuth = *lf.tlsClientAuth
	case "tls-cn-username":
		tlsL().UseCommonNameAsUsername = *lf.tlsCN
	case "ws-addr":
		wsL().Addr = *lf.wsAddr
	case "ws-path":
		wsL().Path = *lf.wsPath
	case "ws-tls":
		wsL().TLS = *lf.wsTLS
	}
}

// serveListeners starts the TLS and WebSocket listeners cfg asks for; they
// run until ctx ends and report a failure on errc. Certificate files that
// cannot work are a usage error.
func serveListeners(ctx context.Context, cfg config.Listeners, srv *broker.Server, log *slog.Logger, errc chan<- error) error {
	var lt *listeners.TLS
	if t := cfg.TLS; t != nil {
		auth, err := listeners.ParseClientAuth(t.ClientAuth)
		if err != nil {
			return usageError{fmt.Errorf("listeners.tls: %w", err)}
		}
		lt, err = listeners.NewTLS(listeners.TLSOptions{
			CertFile: t.CertFile, KeyFile: t.KeyFile, CAFile: t.CAFile,
			ClientAuth: auth, UseCommonNameAsUsername: t.UseCommonNameAsUsername,
			Log: log,
		})
		if err != nil {
			return usageError{err}
		}
		if err := lt.Watch(ctx); err != nil {
			return err
		}
		addr := cmp.Or(t.Addr, defaultTLSAddr)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", addr, err)
		}
		leaf := lt.Certificate()
		log.Info("MQTT TLS listener started", "addr", ln.Addr().String(), "clientAuth", auth.String(),
			"useCommonNameAsUsername", t.UseCommonNameAsUsername,
			"subject", leaf.Subject.String(), "serial", leaf.SerialNumber.String(), "notAfter", leaf.NotAfter)
		go func() { errc <- srv.Serve(ctx, lt.NewListener(ln)) }()
	}
	if w := cfg.WebSocket; w != nil {
		opts := listeners.WebSocketOptions{Path: w.Path, Log: log}
		if w.TLS {
			opts.TLS = lt
		}
		addr := cmp.Or(w.Addr, defaultWebSocketAddr)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", addr, err)
		}
		ws := listeners.NewWebSocket(srv, opts)
		log.Info("MQTT WebSocket listener started", "addr", ln.Addr().String(), "path", cmp.Or(w.Path, listeners.DefaultWebSocketPath), "tls", w.TLS)
		go func() { errc <- ws.Serve(ctx, ln) }()
	}
	return nil
}

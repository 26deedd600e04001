package admin

import (
	"cmp"
	"log/slog"
	"net/http"
	"time"
)

// Limits of the admin HTTP server's connections. Its clients are the
// operator (GET and PUT /v1/auth), Prometheus (/metrics) and the kubelet
// (/healthz, /readyz); anyone else who reaches the port must not be able to
// hold connections open for free.
const (
	// DefaultReadHeaderTimeout bounds the request line and headers (and the
	// TLS handshake before them): a client that trickles or never finishes
	// its headers is cut off.
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultReadTimeout bounds reading a whole request, body included. A
	// bundle of 10,000 users and 50,000 rules (about 10 MB) fits in it at
	// about 85 KB/s; the largest body accepted (DefaultMaxBodyBytes, 64 MiB) at
	// 560 KB/s.
	DefaultReadTimeout = 2 * time.Minute
	// DefaultWriteTimeout bounds the answer. net/http starts it when the
	// headers are read, so it also covers reading the body and applying
	// the bundle: it is DefaultReadTimeout plus time for the apply.
	DefaultWriteTimeout = DefaultReadTimeout + 30*time.Second
	// DefaultIdleTimeout closes a keep-alive connection that sends no
	// request. It is longer than Go's default client keeps idle
	// connections (90 s; the operator uses it), so the operator lets go
	// first and never sends a PUT, which its client would not retry, on a
	// connection the server is closing.
	DefaultIdleTimeout = 2 * time.Minute
	// DefaultMaxHeaderBytes bounds the request line and headers (net/http
	// allows 4 KiB of slack); more is refused with 431. Our clients send
	// well under 1 KiB; a long bearer token still fits.
	DefaultMaxHeaderBytes = 16 << 10
)

// ServerOptions bound the admin HTTP server; a zero field takes its
// Default value. Only tests need other values.
type ServerOptions struct {
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
	// Log receives net/http's own errors (failed TLS handshakes, panics)
	// as warnings.
	Log *slog.Logger
	// Metrics counts refused connections in fleetmq_admin_refused_total
	// when the server runs on a Listener-wrapped listener.
	Metrics *Metrics
}

// NewHTTPServer returns the server the admin API h runs in, over plain
// HTTP (Serve) or TLS (ServeTLS) alike, with the limits of o. Serve it on
// Listener(ln) so that it can count the connections it refuses.
func NewHTTPServer(h http.Handler, o ServerOptions) *http.Server {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	s := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cmp.Or(o.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		ReadTimeout:       cmp.Or(o.ReadTimeout, DefaultReadTimeout),
		WriteTimeout:      cmp.Or(o.WriteTimeout, DefaultWriteTimeout),
		IdleTimeout:       cmp.Or(o.IdleTimeout, DefaultIdleTimeout),
		MaxHeaderBytes:    cmp.Or(o.MaxHeaderBytes, DefaultMaxHeaderBytes),
		ErrorLog:          slog.NewLogLogger(o.Log.Handler(), slog.LevelWarn),
	}
	if o.Metrics != nil {
		trackRefusals(s, o.Metrics)
	}
	return s
}

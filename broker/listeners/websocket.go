package listeners

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// ConnServer takes over accepted connections: the broker's *Server.
type ConnServer interface {
	ServeConn(conn net.Conn)
}

// DefaultWebSocketPath is the path MQTT-over-WebSocket clients use unless
// configured otherwise.
const DefaultWebSocketPath = "/mqtt"

// subprotocols the WebSocket endpoint accepts, preferred first: "mqtt" is
// MQTT 3.1.1 and 5.0 [MQTT-6.0.0-4]; "mqttv3.1" is what MQTT 3.1 clients
// (and some old libraries) offer.
var subprotocols = []string{"mqtt", "mqttv3.1"}

// WebSocketOptions configure a WebSocket endpoint.
type WebSocketOptions struct {
	// Path is the URL path of the endpoint (default DefaultWebSocketPath);
	// other paths answer 404.
	Path string
	// TLS, when set, serves wss:// with its certificate and client
	// certificate mode. The username is never taken from a client
	// certificate here: browsers present certificates on their own, and
	// any Origin is accepted.
	TLS *TLS
	// ReadHeaderTimeout bounds the TLS handshake and the upgrade request
	// (default DefaultHandshakeTimeout).
	ReadHeaderTimeout time.Duration
	// Log receives refused upgrades and failed handshakes.
	Log *slog.Logger
}

// WebSocket serves MQTT over WebSocket: it upgrades requests for its path
// that offer the "mqtt" subprotocol and hands each connection, as a
// net.Conn of the binary messages' bytes, to a ConnServer. MQTT packets may
// span messages and a message may hold several: the broker reads a stream.
type WebSocket struct {
	srv  ConnServer
	opts WebSocketOptions
	log  *slog.Logger
}

// NewWebSocket returns the endpoint that hands connections to srv.
func NewWebSocket(srv ConnServer, opts WebSocketOptions) *WebSocket {
	if opts.Path == "" {
		opts.Path = DefaultWebSocketPath
	}
	if opts.ReadHeaderTimeout <= 0 {
		opts.ReadHeaderTimeout = DefaultHandshakeTimeout
	}
	w := &WebSocket{srv: srv, opts: opts, log: opts.Log}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	return w
}

// Serve accepts HTTP connections on ln (wrapped in TLS when configured)
// until ctx is done, and returns ctx's error then. Upgraded connections
// belong to the ConnServer and outlive Serve: the broker's Shutdown closes
// them.
func (w *WebSocket) Serve(ctx context.Context, ln net.Listener) error {
	if w.opts.TLS != nil {
		ln = tls.NewListener(ln, w.opts.TLS.Config())
	}
	hs := &http.Server{
		Handler:           w,
		ReadHeaderTimeout: w.opts.ReadHeaderTimeout,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(w.log.Handler(), slog.LevelInfo),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, rawConnKey{}, c)
		},
	}
	stop := context.AfterFunc(ctx, func() { hs.Close() })
	defer stop()
	err := hs.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// ServeHTTP upgrades a request for the endpoint's path.
func (w *WebSocket) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if r.URL.Path != w.opts.Path {
		http.NotFound(rw, r)
		return
	}
	if isUpgrade(r) && !offersMQTT(r) {
		// The client MUST offer "mqtt" and the server MUST select it
		// [MQTT-6.0.0-3], [MQTT-6.0.0-4]: refuse before upgrading.
		w.log.Info("WebSocket upgrade refused: no mqtt subprotocol offered", "remote", r.RemoteAddr,
			"offered", strings.Join(r.Header.Values("Sec-WebSocket-Protocol"), ", "))
		http.Error(rw, `MQTT over WebSocket needs the subprotocol "mqtt"`, http.StatusBadRequest)
		return
	}
	c, err := websocket.Accept(rw, r, &websocket.AcceptOptions{
		Subprotocols: subprotocols,
		// MQTT credentials travel in CONNECT, not in cookies, so any web
		// origin may connect (browser apps are rarely served by the broker).
		InsecureSkipVerify: true,
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		// Accept has answered (400, 426, ...).
		w.log.Info("WebSocket upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	// The connection's lifetime is the broker's business, not the request's.
	nc := websocket.NetConn(context.WithoutCancel(r.Context()), c, websocket.MessageBinary)
	raw, _ := r.Context().Value(rawConnKey{}).(net.Conn)
	w.srv.ServeConn(&wsConn{Conn: nc, raw: raw})
}

// rawConnKey keys the accepted connection in a request's context (set by
// Serve; absent when ServeHTTP runs under another http.Server).
type rawConnKey struct{}

// closeGrace bounds the WebSocket close handshake of a closed connection.
const closeGrace = 2 * time.Second

// wsConn is an upgraded connection. It has no SyscallConn, so the broker
// keeps a reader goroutine for it.
type wsConn struct {
	net.Conn          // websocket.NetConn
	raw      net.Conn // the hijacked connection under it, or nil
}

// Close returns at once. The WebSocket close handshake (close frame, then
// waiting for the peer's) runs in a goroutine, bounded by closeGrace
// through the underlying connection's deadline: the broker closes
// connections while holding a lock, and websocket.Conn.Close alone may wait
// 5 s for a peer that does not answer.
func (c *wsConn) Close() error {
	if c.raw != nil {
		c.raw.SetDeadline(time.Now().Add(closeGrace))
	}
	go c.Conn.Close()
	return nil
}

func isUpgrade(r *http.Request) bool {
	return headerHasToken(r.Header, "Upgrade", "websocket")
}

func offersMQTT(r *http.Request) bool {
	for _, p := range subprotocols {
		if headerHasToken(r.Header, "Sec-WebSocket-Protocol", p) {
			return true
		}
	}
	return false
}

// headerHasToken reports whether a comma-separated header lists token
// (case-insensitively).
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

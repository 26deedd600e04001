package listeners

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// NewListener wraps inner so that every accepted connection speaks TLS
// with t's material: give it to the broker's Server.Serve. Accept returns
// at once; the handshake runs on the connection's first Read or Write, in
// the goroutine that serves it, bounded by TLSOptions.HandshakeTimeout.
func (t *TLS) NewListener(inner net.Listener) net.Listener {
	return &listener{Listener: inner, t: t}
}

type listener struct {
	net.Listener
	t *TLS
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &Conn{Conn: tls.Server(c, l.t.base), t: l.t}, nil
}

// Conn is a server TLS connection accepted by a TLS listener. Its first
// Read or Write completes the handshake within the handshake timeout; a
// failed or timed-out handshake is logged with the peer's address and ends
// the connection. Deadlines set before or during the handshake apply once it
// is done.
//
// Conn deliberately has no SyscallConn: the broker's poller only parks
// plain TCP connections, whose bytes it can read without TLS.
type Conn struct {
	*tls.Conn
	t *TLS

	hsOnce sync.Once
	hsErr  error

	// mu guards handshaking and the deadlines the user asked for.
	mu          sync.Mutex
	handshaking bool
	rd, wd      time.Time
}

func (c *Conn) Read(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}

func (c *Conn) Write(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

// SetDeadline sets both deadlines (see SetReadDeadline).
func (c *Conn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rd, c.wd = t, t
	if c.handshaking {
		return nil
	}
	return c.Conn.SetDeadline(t)
}

// SetReadDeadline sets the read deadline; during the handshake, which has
// its own, it is remembered and applied when the handshake is done.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rd = t
	if c.handshaking {
		return nil
	}
	return c.Conn.SetReadDeadline(t)
}

// SetWriteDeadline is SetReadDeadline for writes.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wd = t
	if c.handshaking {
		return nil
	}
	return c.Conn.SetWriteDeadline(t)
}

func (c *Conn) handshake() error {
	c.hsOnce.Do(c.doHandshake)
	return c.hsErr
}

func (c *Conn) doHandshake() {
	timeout := c.t.opts.HandshakeTimeout
	c.mu.Lock()
	c.handshaking = true
	c.Conn.SetDeadline(time.Now().Add(timeout))
	c.mu.Unlock()

	err := c.Conn.HandshakeContext(context.Background())

	c.mu.Lock()
	c.handshaking = false
	// Restore the deadlines the broker set during the handshake; a failure
	// means the connection is gone, which the next read reports.
	_ = c.Conn.SetReadDeadline(c.rd)
	_ = c.Conn.SetWriteDeadline(c.wd)
	c.mu.Unlock()
	if err == nil {
		return
	}
	c.hsErr = fmt.Errorf("TLS handshake: %w", err)
	remote := c.RemoteAddr().String()
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		c.t.log.Info("TLS handshake timed out; closing connection", "remote", remote, "timeout", timeout)
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		// A TCP probe, a client giving up, or the broker closing: not news.
		c.t.log.Debug("TLS handshake ended", "remote", remote, "err", err)
	default:
		c.t.log.Info("TLS handshake failed; closing connection", "remote", remote, "err", err)
	}
}

// VerifiedUsername is the subject common name of the client's verified
// certificate when the listener takes the username from it
// (TLSOptions.UseCommonNameAsUsername); ok is false otherwise, and when the
// client presented no certificate or one with an empty CN (the client then
// authenticates with CONNECT's username and password). The broker asks for
// it at CONNECT (broker.VerifiedUserConn).
func (c *Conn) VerifiedUsername() (name string, ok bool) {
	if !c.t.opts.UseCommonNameAsUsername {
		return "", false
	}
	cs := c.Conn.ConnectionState()
	if !cs.HandshakeComplete || len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return "", false
	}
	cn := cs.VerifiedChains[0][0].Subject.CommonName
	return cn, cn != ""
}

package admin

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"os"
	"sync/atomic"
)

// Why the admin server refused a request or a connection, the reason
// label of fleetmq_admin_refused_total.
const (
	refusedUnauthorized = "unauthorized" // no or wrong bearer token (401)
	refusedTooLarge     = "too_large"    // headers (431) or body (413) over the limit
	refusedTimeout      = "timeout"      // headers or body not in time
	refusedBadRequest   = "bad_request"  // a request net/http could not parse
)

var refusalReasons = []string{refusedUnauthorized, refusedTooLarge, refusedTimeout, refusedBadRequest}

// Listener wraps ln so that the server NewHTTPServer builds can count the
// connections it refuses before any handler runs: net/http cuts off a slow
// client and answers an oversized or malformed request itself, and says
// only that the connection closed. The wrapped connection records whether
// a read hit its deadline and whether net/http wrote a 431.
func Listener(ln net.Listener) net.Listener { return trackingListener{ln} }

type trackingListener struct{ net.Listener }

func (l trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &trackedConn{Conn: c}, nil
}

// trackedConn follows one admin connection. begun counts requests net/http
// started reading (ConnState StateActive), served those that reached the
// handler; a connection closed with begun > served ended in a refusal.
type trackedConn struct {
	net.Conn
	timedOut atomic.Bool
	tooLarge atomic.Bool
	begun    atomic.Int32
	served   atomic.Int32
}

func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		c.timedOut.Store(true)
	}
	return n, err
}

func (c *trackedConn) Write(p []byte) (int, error) {
	if c.begun.Load() > c.served.Load() && bytes.HasPrefix(p, []byte("HTTP/1.1 431 ")) {
		c.tooLarge.Store(true)
	}
	return c.Conn.Write(p)
}

// refusal is why the connection was refused, or "" when it was not: every
// request it began reached the handler (which counts its own refusals),
// and a connection that never sent a byte was closed by the client, not
// by the header timeout.
func (c *trackedConn) refusal() string {
	begun, served := c.begun.Load(), c.served.Load()
	switch {
	case begun == 0 && c.timedOut.Load():
		return refusedTimeout
	case begun <= served:
		return ""
	case c.tooLarge.Load():
		return refusedTooLarge
	case c.timedOut.Load():
		return refusedTimeout
	default:
		return refusedBadRequest
	}
}

// trackedOf finds the trackedConn under c (TLS wraps it); nil when the
// server's listener was not wrapped with Listener.
func trackedOf(c net.Conn) *trackedConn {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	t, _ := c.(*trackedConn)
	return t
}

type trackedKey struct{}

// trackRefusals makes s count refused connections in m.
func trackRefusals(s *http.Server, m *Metrics) {
	h := s.Handler
	s.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if t, ok := r.Context().Value(trackedKey{}).(*trackedConn); ok {
			t.served.Add(1)
		}
		h.ServeHTTP(w, r)
	})
	s.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if t := trackedOf(c); t != nil {
			return context.WithValue(ctx, trackedKey{}, t)
		}
		return ctx
	}
	s.ConnState = func(c net.Conn, state http.ConnState) {
		t := trackedOf(c)
		if t == nil {
			return
		}
		switch state {
		case http.StateActive:
			t.begun.Add(1)
		case http.StateClosed, http.StateHijacked:
			if reason := t.refusal(); reason != "" {
				m.refused(reason)
			}
		}
	}
}

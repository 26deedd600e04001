package listeners

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fleetmq/fleetmq/broker/internal/dirwatch"
)

// ClientAuth says whether a TLS listener asks for client certificates.
type ClientAuth int

// Client certificate modes.
const (
	// ClientAuthNone asks for no client certificate.
	ClientAuthNone ClientAuth = iota
	// ClientAuthOptional verifies a client certificate against the CA pool
	// when the client presents one; a client without one still connects.
	ClientAuthOptional
	// ClientAuthRequired refuses the handshake of a client without a
	// certificate signed by the CA pool.
	ClientAuthRequired
)

// ParseClientAuth reads "none" (or ""), "optional" or "required".
func ParseClientAuth(s string) (ClientAuth, error) {
	switch s {
	case "", "none":
		return ClientAuthNone, nil
	case "optional":
		return ClientAuthOptional, nil
	case "required":
		return ClientAuthRequired, nil
	}
	return 0, fmt.Errorf("client auth %q: want none, optional or required", s)
}

func (a ClientAuth) String() string {
	switch a {
	case ClientAuthNone:
		return "none"
	case ClientAuthOptional:
		return "optional"
	case ClientAuthRequired:
		return "required"
	}
	return fmt.Sprintf("ClientAuth(%d)", int(a))
}

func (a ClientAuth) tlsType() tls.ClientAuthType {
	switch a {
	case ClientAuthOptional:
		return tls.VerifyClientCertIfGiven
	case ClientAuthRequired:
		return tls.RequireAndVerifyClientCert
	}
	return tls.NoClientCert
}

// Defaults of TLSOptions.
const (
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultReloadInterval   = time.Minute
)

// TLSOptions configure a TLS.
type TLSOptions struct {
	// CertFile and KeyFile are the server certificate (chain) and its key,
	// PEM, as cert-manager writes tls.crt and tls.key.
	CertFile, KeyFile string
	// CAFile is the PEM bundle client certificates are verified against
	// (ca.crt). Required unless ClientAuth is ClientAuthNone, ignored then.
	CAFile string
	// ClientAuth says whether client certificates are asked for.
	ClientAuth ClientAuth
	// UseCommonNameAsUsername makes a verified client certificate the
	// client's credential: its subject CN becomes the username, and the
	// CONNECT's username and password are ignored (see Conn.VerifiedUsername).
	// It needs ClientAuth optional or required.
	UseCommonNameAsUsername bool
	// HandshakeTimeout bounds a handshake on Listener connections (default
	// DefaultHandshakeTimeout).
	HandshakeTimeout time.Duration
	// ReloadInterval is how often Watch re-reads the files even when no
	// change was notified (default DefaultReloadInterval; negative: never).
	ReloadInterval time.Duration
	// Log receives reloads, refused files and failed handshakes.
	Log *slog.Logger
}

// TLS is a server TLS configuration whose certificate, key and client CA
// pool are reloaded from their files. Handshakes read the material in force
// from an atomic pointer; a reload builds and validates the new material off
// to the side and swaps it, so established connections are never touched
// and a bad file never replaces a good one.
type TLS struct {
	opts TLSOptions
	log  *slog.Logger
	base *tls.Config

	cur atomic.Pointer[tlsState]

	// mu serializes reloads and guards lastErr, the last failure logged
	// (so a bad file is logged once, not on every check).
	mu      sync.Mutex
	lastErr string
}

// tlsState is one immutable generation of certificate material.
type tlsState struct {
	cfg  *tls.Config // what a handshake uses
	leaf *x509.Certificate
	sum  [sha256.Size]byte // of the files it was built from
}

// NewTLS loads the files named by opts. An unreadable or invalid file is an
// error naming it.
func NewTLS(opts TLSOptions) (*TLS, error) {
	if opts.CertFile == "" || opts.KeyFile == "" {
		return nil, errors.New("listeners: TLS needs a certificate file and a key file")
	}
	if opts.ClientAuth != ClientAuthNone && opts.CAFile == "" {
		return nil, fmt.Errorf("listeners: client auth %s needs a CA file", opts.ClientAuth)
	}
	if opts.UseCommonNameAsUsername && opts.ClientAuth == ClientAuthNone {
		return nil, errors.New("listeners: using the certificate's common name as username needs client auth optional or required")
	}
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if opts.ReloadInterval == 0 {
		opts.ReloadInterval = DefaultReloadInterval
	}
	t := &TLS{opts: opts, log: opts.Log}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	sum, files, err := t.readFiles()
	if err != nil {
		return nil, fmt.Errorf("listeners: %w", err)
	}
	st, err := t.build(sum, files)
	if err != nil {
		return nil, fmt.Errorf("listeners: %w", err)
	}
	t.cur.Store(st)
	t.warnValidity(st.leaf)
	t.base = &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Every handshake takes the generation in force. Each generation is
		// its own tls.Config, with its own session ticket keys: a session
		// from before a rotation is not resumed with the new material.
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return t.cur.Load().cfg, nil
		},
	}
	return t, nil
}

// Config is the server tls.Config to give tls.Server or tls.NewListener: it
// always hands out the material in force.
func (t *TLS) Config() *tls.Config { return t.base }

// Certificate is the leaf certificate in force.
func (t *TLS) Certificate() *x509.Certificate { return t.cur.Load().leaf }

// ClientAuth is the client certificate mode.
func (t *TLS) ClientAuth() ClientAuth { return t.opts.ClientAuth }

type tlsFiles struct{ cert, key, ca []byte }

// readFiles reads the files and hashes their content.
func (t *TLS) readFiles() ([sha256.Size]byte, tlsFiles, error) {
	var f tlsFiles
	var err error
	if f.cert, err = os.ReadFile(t.opts.CertFile); err != nil {
		return [sha256.Size]byte{}, f, fmt.Errorf("read TLS certificate: %w", err)
	}
	if f.key, err = os.ReadFile(t.opts.KeyFile); err != nil {
		return [sha256.Size]byte{}, f, fmt.Errorf("read TLS key: %w", err)
	}
	if t.opts.ClientAuth != ClientAuthNone {
		if f.ca, err = os.ReadFile(t.opts.CAFile); err != nil {
			return [sha256.Size]byte{}, f, fmt.Errorf("read TLS client CA: %w", err)
		}
	}
	h := sha256.New()
	for _, b := range [][]byte{f.cert, f.key, f.ca} {
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(b))))
		h.Write(b)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum, f, nil
}

// build validates the files and makes their generation.
func (t *TLS) build(sum [sha256.Size]byte, f tlsFiles) (*tlsState, error) {
	cert, err := tls.X509KeyPair(f.cert, f.key)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate %s and key %s: %w", t.opts.CertFile, t.opts.KeyFile, err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("TLS certificate %s: %w", t.opts.CertFile, err)
		}
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   t.opts.ClientAuth.tlsType(),
	}
	if t.opts.ClientAuth != ClientAuthNone {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(f.ca) {
			return nil, fmt.Errorf("TLS client CA %s: no PEM certificate in it", t.opts.CAFile)
		}
		cfg.ClientCAs = pool
	}
	return &tlsState{cfg: cfg, leaf: leaf, sum: sum}, nil
}

// Reload re-reads the files and swaps in their material when it changed and
// is valid. Otherwise the material in force stays, and the error says why
// (it is logged once per distinct failure).
func (t *TLS) Reload() (changed bool, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	changed, err = t.reloadLocked()
	if err != nil {
		if msg := err.Error(); msg != t.lastErr {
			t.lastErr = msg
			t.log.Error("TLS certificate refused; keeping the one in force", "err", err,
				"serial", t.cur.Load().leaf.SerialNumber.String())
		}
		return false, err
	}
	t.lastErr = ""
	return changed, nil
}

func (t *TLS) reloadLocked() (bool, error) {
	sum, files, err := t.readFiles()
	if err != nil {
		return false, err
	}
	if sum == t.cur.Load().sum {
		return false, nil
	}
	st, err := t.build(sum, files)
	if err != nil {
		return false, err
	}
	t.cur.Store(st)
	t.log.Info("TLS certificate reloaded", "subject", st.leaf.Subject.String(),
		"serial", st.leaf.SerialNumber.String(), "notAfter", st.leaf.NotAfter)
	t.warnValidity(st.leaf)
	return true, nil
}

func (t *TLS) warnValidity(leaf *x509.Certificate) {
	now := time.Now()
	switch {
	case now.After(leaf.NotAfter):
		t.log.Warn("TLS certificate has expired", "serial", leaf.SerialNumber.String(), "notAfter", leaf.NotAfter)
	case now.Before(leaf.NotBefore):
		t.log.Warn("TLS certificate is not valid yet", "serial", leaf.SerialNumber.String(), "notBefore", leaf.NotBefore)
	}
}

// Watch reloads the files when they change until ctx is done. It watches
// their directories, so that Kubernetes swapping a mounted Secret's
// "..data" symlink is seen, and re-reads them every ReloadInterval in case
// an event was missed. Refused files are logged; the material in force
// stays.
func (t *TLS) Watch(ctx context.Context) error {
	var dirs []string
	for _, f := range []string{t.opts.CertFile, t.opts.KeyFile, t.opts.CAFile} {
		if f == "" || (f == t.opts.CAFile && t.opts.ClientAuth == ClientAuthNone) {
			continue
		}
		dirs = append(dirs, filepath.Dir(f))
	}
	reload := func() { _, _ = t.Reload() } // logged there
	if err := dirwatch.Watch(ctx, dirs, t.opts.ReloadInterval, t.log, "TLS file", reload); err != nil {
		return fmt.Errorf("watch TLS files: %w", err)
	}
	return nil
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

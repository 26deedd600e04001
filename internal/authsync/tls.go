package authsync

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// TLS is how the operator verifies one Broker's admin API: only the
// Broker's own CA is trusted, and the certificate must name ServerName
// (the headless Service) although the client dials the pod IP.
type TLS struct {
	ServerName string
	// RootsPEM is the trust bundle: the Broker's CA, and during a rotation
	// the previous one.
	RootsPEM []byte
}

// ErrUntrusted is matched (errors.Is) by the error of a request to a
// broker whose certificate does not verify against its Broker's CA.
var ErrUntrusted = errors.New("admin API certificate not trusted")

// TLSClients hands out HTTPS clients per Broker, keeping one transport
// (and its connections) per server name while the trust bundle is
// unchanged. The zero value is ready to use.
type TLSClients struct {
	// Timeout bounds each request (10 s when 0).
	Timeout time.Duration

	// mu guards m.
	mu sync.Mutex
	m  map[string]tlsEntry // by server name
}

type tlsEntry struct {
	sum [sha256.Size]byte // of RootsPEM
	hc  *http.Client
}

// Client is the admin API client for a Broker's token and TLS. A nil or
// empty t yields a client whose every request fails: the operator never
// falls back to plain HTTP.
func (c *TLSClients) Client(token string, t *TLS) Client {
	if t == nil || t.ServerName == "" || len(t.RootsPEM) == 0 {
		return &HTTPClient{Token: token, Scheme: "https", HTTP: &http.Client{Transport: refuse{}}}
	}
	hc, err := c.http(t)
	if err != nil {
		return &HTTPClient{Token: token, Scheme: "https", HTTP: &http.Client{Transport: refuse{err: err}}}
	}
	return &HTTPClient{Token: token, Scheme: "https", HTTP: hc}
}

func (c *TLSClients) http(t *TLS) (*http.Client, error) {
	sum := sha256.Sum256(t.RootsPEM)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[t.ServerName]; ok && e.sum == sum {
		return e.hc, nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(t.RootsPEM) {
		return nil, fmt.Errorf("authsync: trust bundle of %s holds no certificate", t.ServerName)
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	hc := &http.Client{Timeout: timeout, Transport: &http.Transport{
		// Pod IPs are dialed directly, never through an environment proxy.
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     &tls.Config{RootCAs: pool, ServerName: t.ServerName, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 5 * time.Second,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     90 * time.Second,
	}}
	if old, ok := c.m[t.ServerName]; ok {
		old.hc.CloseIdleConnections()
	}
	if c.m == nil {
		c.m = map[string]tlsEntry{}
	}
	c.m[t.ServerName] = tlsEntry{sum: sum, hc: hc}
	return hc, nil
}

// Forget drops the transport of a server name (a deleted Broker).
func (c *TLSClients) Forget(serverName string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[serverName]; ok {
		e.hc.CloseIdleConnections()
		delete(c.m, serverName)
	}
}

// refuse is the transport of a client without usable TLS settings.
type refuse struct{ err error }

func (r refuse) RoundTrip(*http.Request) (*http.Response, error) {
	if r.err != nil {
		return nil, r.err
	}
	return nil, errors.New("authsync: no TLS settings for the admin API; refusing plain HTTP")
}

// untrusted wraps a certificate verification failure in ErrUntrusted.
func untrusted(err error) error {
	var verr *tls.CertificateVerificationError
	if errors.As(err, &verr) {
		return fmt.Errorf("%w: %w", ErrUntrusted, err)
	}
	return err
}

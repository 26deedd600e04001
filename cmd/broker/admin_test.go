package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleetmq/fleetmq/broker/config"
	"github.com/fleetmq/fleetmq/internal/pki"
)

// adminName is the name the operator's client verifies (the headless
// Service), while it dials an IP.
const adminName = "acme-headless.tenant.svc"

// writeAdminTLS issues a serving certificate from a new CA into dir as the
// operator's Secret is mounted (tls.crt, tls.key; replaced by rename, as
// the kubelet swaps a Secret volume), and returns a client trusting only
// that CA and verifying adminName.
func writeAdminTLS(t *testing.T, dir string) *http.Client {
	t.Helper()
	m, err := pki.Ensure(pki.Material{}, "test CA", []string{adminName, "*.acme-headless.tenant.svc"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"tls.crt": m.Material.ServerCert, "tls.key": m.Material.ServerKey} {
		tmp := filepath.Join(dir, "."+name+".tmp")
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	pool, err := pki.Pool(m.Material.Trust())
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Timeout: timeout, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: adminName, MinVersion: tls.VersionTLS12},
	}}
}

// TestAdminTLSFlagsAndMetricsToken runs the broker as the operator renders
// it: the admin API over TLS from --admin-tls-cert/--admin-tls-key, a
// metrics token that reads /metrics and nothing else, and a certificate
// swapped on disk taking effect without a restart.
func TestAdminTLSFlagsAndMetricsToken(t *testing.T) {
	dir := t.TempDir()
	client := writeAdminTLS(t, dir)
	adminAddr := freeAddr(t)
	cfg, err := parseFlags([]string{"--mqtt-addr", freeAddr(t), "--admin-addr", adminAddr, "--allow-anonymous",
		"--admin-tls-cert", filepath.Join(dir, "tls.crt"), "--admin-tls-key", filepath.Join(dir, "tls.key"),
		"--admin-token-file", writeFile(t, "admin", "admin-tok\n"),
		"--metrics-token-file", writeFile(t, "metrics", "metrics-tok\n")}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg.SysInterval = config.Duration{Duration: -1}
	startServe(t, cfg)

	call := func(c *http.Client, method, path, tok string) (int, error) {
		req, _ := http.NewRequest(method, "https://"+adminAddr+path, strings.NewReader("{}"))
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	deadline := time.Now().Add(timeout)
	for {
		code, err := call(client, http.MethodGet, "/healthz", "")
		if err == nil && code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /healthz over TLS by name: %d %v", code, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, tc := range []struct {
		method, path, tok string
		want              int
	}{
		{http.MethodGet, "/metrics", "metrics-tok", http.StatusOK},
		{http.MethodGet, "/metrics", "admin-tok", http.StatusOK},
		{http.MethodGet, "/metrics", "", http.StatusUnauthorized},
		{http.MethodGet, "/v1/auth", "metrics-tok", http.StatusUnauthorized},
		{http.MethodPut, "/v1/auth", "metrics-tok", http.StatusUnauthorized},
		{http.MethodGet, "/v1/auth", "admin-tok", http.StatusOK},
	} {
		code, err := call(client, tc.method, tc.path, tc.tok)
		if err != nil || code != tc.want {
			t.Errorf("%s %s with token %q: got %d %v, want %d", tc.method, tc.path, tc.tok, code, err, tc.want)
		}
	}

	// The operator reissues from a new CA: the broker serves the new
	// certificate without a restart, and a client of the old CA only is
	// refused as it should be.
	newClient := writeAdminTLS(t, dir)
	deadline = time.Now().Add(timeout)
	for {
		code, err := call(newClient, http.MethodGet, "/healthz", "")
		if err == nil && code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the swapped certificate was not served: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	client.CloseIdleConnections()
	_, err = call(client, http.MethodGet, "/healthz", "")
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Errorf("client trusting only the replaced CA: %v, want an unknown authority error", err)
	}
}

// TestMQTTDisabled: with --mqtt-disabled the plain port is not bound while
// TLS serves; without any other listener it is a usage error.
func TestMQTTDisabled(t *testing.T) {
	loopback := []string{"--mqtt-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}
	err := run(append(loopback, "--mqtt-disabled"), strings.NewReader(""), io.Discard, io.Discard)
	expectUsageError(t, err, "listeners.mqttDisabled")

	dir, _ := tlsFiles(t)
	mqttAddr, tlsAddr := freeAddr(t), freeAddr(t)
	cfg, err := parseFlags([]string{"--mqtt-addr", mqttAddr, "--mqtt-disabled", "--admin-addr", "", "--allow-anonymous",
		"--tls-addr", tlsAddr, "--tls-cert", filepath.Join(dir, "tls.crt"), "--tls-key", filepath.Join(dir, "tls.key")}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg.SysInterval = config.Duration{Duration: -1}
	startServe(t, cfg)
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", tlsAddr, timeout)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("TLS listener: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The TLS listener is up, so the plain one would be too.
	if c, err := net.DialTimeout("tcp", mqttAddr, timeout); err == nil {
		c.Close()
		t.Fatalf("plain MQTT listener %s accepts connections with --mqtt-disabled", mqttAddr)
	}
}

package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetmq/fleetmq/broker/config"
)

// tlsFiles writes a CA (ca.crt) and a server certificate for 127.0.0.1
// (tls.crt, tls.key) signed by it into a directory, as the operator mounts
// them, and returns the directory and a client config trusting the CA.
func tlsFiles(t *testing.T) (string, *tls.Config) {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "broker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	for name, data := range map[string][]byte{
		"ca.crt":  caPEM,
		"tls.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		"tls.key": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return dir, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

func TestListenerFlags(t *testing.T) {
	file := writeFile(t, "c.yaml", `listeners:
  tls:
    addr: "127.0.0.1:1"
    certFile: /f/tls.crt
    keyFile: /f/tls.key
    caFile: /f/ca.crt
    clientAuth: required
    useCommonNameAsUsername: true
  websocket:
    addr: "127.0.0.1:2"
    path: /ws
    tls: true
`)
	for _, tc := range []struct {
		name string
		args []string
		want config.Listeners
	}{
		{"file", []string{"--config", file}, config.Listeners{
			TLS:       &config.TLSListener{Addr: "127.0.0.1:1", CertFile: "/f/tls.crt", KeyFile: "/f/tls.key", CAFile: "/f/ca.crt", ClientAuth: "required", UseCommonNameAsUsername: true},
			WebSocket: &config.WebSocketListener{Addr: "127.0.0.1:2", Path: "/ws", TLS: true},
		}},
		{"flags only", []string{"--tls-cert", "/c", "--tls-key", "/k", "--ws-addr", "127.0.0.1:3"}, config.Listeners{
			TLS:       &config.TLSListener{CertFile: "/c", KeyFile: "/k"},
			WebSocket: &config.WebSocketListener{Addr: "127.0.0.1:3"},
		}},
		{"flags override the file", []string{"--config", file, "--tls-client-auth", "optional", "--tls-cn-username=false", "--ws-path", "/mqtt", "--ws-tls=false", "--tls-addr", "127.0.0.1:4"}, config.Listeners{
			TLS:       &config.TLSListener{Addr: "127.0.0.1:4", CertFile: "/f/tls.crt", KeyFile: "/f/tls.key", CAFile: "/f/ca.crt", ClientAuth: "optional"},
			WebSocket: &config.WebSocketListener{Addr: "127.0.0.1:2", Path: "/mqtt"},
		}},
		{"none by default", nil, config.Listeners{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseFlags(tc.args, io.Discard)
			if err != nil {
				t.Fatalf("parseFlags: %v", err)
			}
			got := c.Listeners
			if !equalPtr(got.TLS, tc.want.TLS) || !equalPtr(got.WebSocket, tc.want.WebSocket) {
				t.Errorf("got tls %+v websocket %+v, want %+v %+v", got.TLS, got.WebSocket, tc.want.TLS, tc.want.WebSocket)
			}
		})
	}
}

func equalPtr[T comparable](a, b *T) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && *a == *b)
}

func TestListenerUsageErrors(t *testing.T) {
	dir, _ := tlsFiles(t)
	crt, key, ca := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), filepath.Join(dir, "ca.crt")
	loopback := []string{"--mqtt-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no key", []string{"--tls-cert", crt}, "listeners.tls: certFile and keyFile are both required"},
		{"bad client auth", []string{"--tls-cert", crt, "--tls-key", key, "--tls-client-auth", "maybe"}, `listeners.tls.clientAuth "maybe"`},
		{"client auth without CA", []string{"--tls-cert", crt, "--tls-key", key, "--tls-client-auth", "required"}, "listeners.tls.caFile"},
		{"CN without client auth", []string{"--tls-cert", crt, "--tls-key", key, "--tls-cn-username"}, "useCommonNameAsUsername"},
		{"missing certificate", []string{"--tls-cert", "/nonexistent/tls.crt", "--tls-key", key}, "/nonexistent/tls.crt"},
		{"key of no certificate", []string{"--tls-cert", ca, "--tls-key", key}, "ca.crt"},
		{"CA file without certificates", []string{"--tls-cert", crt, "--tls-key", key, "--tls-client-auth", "optional", "--tls-ca", key}, "tls.key: no PEM certificate"},
		{"wss without TLS", []string{"--ws-tls"}, "listeners.websocket.tls"},
		{"bad ws path", []string{"--ws-path", "mqtt"}, `listeners.websocket.path "mqtt"`},
		{"misspelt tls field", []string{"--config", writeFile(t, "c.yaml", "listeners:\n  tls:\n    certfile: x\n")}, "certfile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Should the arguments be accepted after all, the broker serves
			// on loopback only.
			args := append(slices.Clone(loopback), tc.args...)
			if slices.Contains(args, "--tls-cert") {
				args = append(args, "--tls-addr", "127.0.0.1:0")
			}
			if slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--ws-") }) {
				args = append(args, "--ws-addr", "127.0.0.1:0")
			}
			errc := make(chan error, 1)
			go func() { errc <- run(args, strings.NewReader(""), io.Discard, io.Discard) }()
			select {
			case err := <-errc:
				expectUsageError(t, err, tc.want)
			case <-time.After(timeout):
				t.Fatalf("run(%q) is serving, want a usage error", args)
			}
		})
	}
}

// TestServeListeners runs the broker as main wires it with TLS and
// WebSocket (plain and wss) listeners; clients on each exchange messages.
func TestServeListeners(t *testing.T) {
	dir, clientTLS := tlsFiles(t)
	mqttAddr, tlsAddr, wsAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	cfg, err := parseFlags([]string{"--mqtt-addr", mqttAddr, "--admin-addr", "", "--allow-anonymous",
		"--tls-addr", tlsAddr, "--tls-cert", filepath.Join(dir, "tls.crt"), "--tls-key", filepath.Join(dir, "tls.key"),
		"--ws-addr", wsAddr, "--ws-path", "/broker"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg.SysInterval = config.Duration{Duration: -1}
	stop := startServe(t, cfg)

	connect := func(t *testing.T, url, id string, got chan mqtt.Message) mqtt.Client {
		t.Helper()
		opts := mqtt.NewClientOptions().AddBroker(url).SetClientID(id).SetProtocolVersion(4).
			SetTLSConfig(clientTLS).SetAutoReconnect(false).SetConnectTimeout(timeout)
		if got != nil {
			opts.SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { got <- m })
		}
		var c mqtt.Client
		deadline := time.Now().Add(timeout)
		for {
			c = mqtt.NewClient(opts)
			tok := c.Connect()
			if tok.WaitTimeout(timeout) && tok.Error() == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("connect to %s: %v", url, tok.Error())
			}
			time.Sleep(20 * time.Millisecond) // still starting
		}
		t.Cleanup(func() { c.Disconnect(0) })
		return c
	}
	got := make(chan mqtt.Message, 4)
	sub := connect(t, "tcp://"+mqttAddr, "sub", got)
	if tok := sub.Subscribe("l/#", 1, nil); !tok.WaitTimeout(timeout) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	for _, url := range []string{"tls://" + tlsAddr, "ws://" + wsAddr + "/broker"} {
		c := connect(t, url, "pub-"+url[:strings.Index(url, ":")], nil)
		if tok := c.Publish("l/x", 1, false, url); !tok.WaitTimeout(timeout) || tok.Error() != nil {
			t.Fatalf("publish over %s: %v", url, tok.Error())
		}
		select {
		case m := <-got:
			if string(m.Payload()) != url {
				t.Errorf("got %q, want %q", m.Payload(), url)
			}
		case <-time.After(timeout):
			t.Fatalf("nothing received from %s", url)
		}
	}

	stop()
}

// The admin API can be served over TLS (listeners.adminTLS): health over
// https answers, a plain-HTTP client is refused, and the server's limits
// hold over TLS too.
func TestAdminTLS(t *testing.T) {
	dir, clientTLS := tlsFiles(t)
	adminAddr := freeAddr(t)
	cfg, err := parseFlags([]string{"--mqtt-addr", freeAddr(t), "--admin-addr", adminAddr, "--allow-anonymous"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listeners.AdminTLS = &config.TLSFiles{CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key")}
	cfg.SysInterval = config.Duration{Duration: -1}
	startServe(t, cfg)

	client := &http.Client{Timeout: timeout, Transport: &http.Transport{TLSClientConfig: clientTLS}}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get("https://" + adminAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET /healthz over TLS: %d, want 200", resp.StatusCode)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /healthz over TLS: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := (&http.Client{Timeout: timeout}).Get("http://" + adminAddr + "/healthz")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatalf("plain HTTP to the TLS admin listener got 200")
		}
	}
	expectHeaderLimit(t, client, "https://"+adminAddr+"/healthz")
}

package listeners_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"

	"github.com/fleetmq/fleetmq/broker"
	"github.com/fleetmq/fleetmq/broker/admin"
	"github.com/fleetmq/fleetmq/broker/authz"
	"github.com/fleetmq/fleetmq/broker/internal/mqtttest"
	"github.com/fleetmq/fleetmq/broker/listeners"
)

// The TLS connection type is what the broker looks for at CONNECT.
var _ broker.VerifiedUserConn = (*listeners.Conn)(nil)

var serial atomic.Int64

// ca is a test certificate authority (ECDSA P-256).
type ca struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t testing.TB, name string) *ca {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1)),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("create CA: %v", err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &ca{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// leaf is an issued certificate with its key, PEM.
type leaf struct {
	certPEM, keyPEM []byte
	serial          *big.Int
}

func (l leaf) tls(t testing.TB) tls.Certificate {
	t.Helper()
	c, err := tls.X509KeyPair(l.certPEM, l.keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// issue signs a certificate for cn: a server certificate for 127.0.0.1
// and localhost, or a client certificate.
func (a *ca) issue(t testing.TB, cn string, server bool) leaf {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, &key.PublicKey, a.key)
	if err != nil {
		t.Fatalf("issue %s: %v", cn, err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return leaf{
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
		serial:  tmpl.SerialNumber,
	}
}

// secretDir lays files out as the kubelet mounts a Secret: each name is a
// symlink into "..data", itself a symlink to a timestamped directory, and
// an update swaps "..data" atomically.
type secretDir struct {
	dir string
	gen int
}

func newSecretDir(t testing.TB, files map[string][]byte) *secretDir {
	t.Helper()
	d := &secretDir{dir: t.TempDir()}
	d.update(t, files)
	for name := range files {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(d.dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func (d *secretDir) path(name string) string { return filepath.Join(d.dir, name) }

// update writes a new generation and swaps "..data" to it.
func (d *secretDir) update(t testing.TB, files map[string][]byte) {
	t.Helper()
	d.gen++
	gen := fmt.Sprintf("..2026_01_01_00_00_%02d.%d", d.gen, d.gen)
	if err := os.Mkdir(filepath.Join(d.dir, gen), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(d.dir, gen, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tmp := filepath.Join(d.dir, "..data_tmp")
	if err := os.Symlink(gen, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(d.dir, "..data")); err != nil {
		t.Fatal(err)
	}
}

// pki is a CA with a server certificate, mounted as a Secret.
type pki struct {
	ca     *ca
	server leaf
	secret *secretDir
}

func newPKI(t testing.TB) *pki {
	t.Helper()
	p := &pki{ca: newCA(t, "test CA")}
	p.server = p.ca.issue(t, "broker", true)
	p.secret = newSecretDir(t, map[string][]byte{"tls.crt": p.server.certPEM, "tls.key": p.server.keyPEM, "ca.crt": p.ca.pem})
	return p
}

func (p *pki) options(auth listeners.ClientAuth) listeners.TLSOptions {
	o := listeners.TLSOptions{
		CertFile:   p.secret.path("tls.crt"),
		KeyFile:    p.secret.path("tls.key"),
		ClientAuth: auth,
	}
	if auth != listeners.ClientAuthNone {
		o.CAFile = p.secret.path("ca.crt")
	}
	return o
}

// clientConfig trusts p's CA and presents certs.
func (p *pki) clientConfig(certs ...tls.Certificate) *tls.Config {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.ca.pem)
	return &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", Certificates: certs, MinVersion: tls.VersionTLS12}
}

// logBuffer collects log output for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func newLog() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// waitLog waits until the log holds every one of parts on one line.
func waitLog(t testing.TB, l *logBuffer, parts ...string) {
	t.Helper()
	mqtttest.WaitFor(t, fmt.Sprintf("a log line with %q", parts), func() bool {
		for line := range strings.SplitSeq(l.String(), "\n") {
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(line, p)
			}
			if ok {
				return true
			}
		}
		return false
	})
}

// testPolicy: "device-1" and "sensor" (password "pw"), "blocked"
// (disabled). device-1 and sensor may publish and subscribe under
// devices/<username>/#, sensor also reads devices/#.
func testPolicy(t testing.TB) broker.Authorizer {
	t.Helper()
	h, err := authz.HashPassword([]byte("pw"), 1)
	if err != nil {
		t.Fatal(err)
	}
	both := []authz.Action{authz.ActionPublish, authz.ActionSubscribe}
	p, err := authz.Compile(&authz.Bundle{
		APIVersion: authz.APIVersion, Revision: 1,
		Users: []authz.User{
			{Username: "device-1", PasswordHash: h},
			{Username: "sensor", PasswordHash: h},
			{Username: "blocked", PasswordHash: h, Disabled: true},
		},
		Rules: []authz.Rule{
			{Subjects: authz.Subjects{Users: []string{"device-1", "sensor"}}, Topics: []string{"devices/%u/#"}, Actions: both, Effect: authz.EffectAllow},
			{Subjects: authz.Subjects{Users: []string{"sensor"}}, Topics: []string{"devices/#"}, Actions: []authz.Action{authz.ActionSubscribe}, Effect: authz.EffectAllow},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return admin.PolicyAuthorizer(p)
}

// newBroker starts a broker (no listener) that stops with the test.
func newBroker(t testing.TB, auth broker.Authorizer, log *slog.Logger) *broker.Server {
	t.Helper()
	srv, err := broker.New(broker.Options{Auth: auth, AllowAnonymous: auth == nil, SysInterval: -1, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), mqtttest.Timeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return srv
}

// serveTLS runs srv on a TLS listener with opts and returns the address and
// the TLS, which watches its files until the test ends.
func serveTLS(t testing.TB, srv *broker.Server, opts listeners.TLSOptions) (string, *listeners.TLS) {
	t.Helper()
	lt, err := listeners.NewTLS(opts)
	if err != nil {
		t.Fatalf("NewTLS: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := lt.Watch(ctx); err != nil {
		t.Fatalf("Watch: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ctx, lt.NewListener(ln))
	}()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String(), lt
}

// serveTCP runs srv on a plain loopback listener.
func serveTCP(t testing.TB, srv *broker.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ctx, ln)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

// v5 is a paho.golang (MQTT 5.0) client over conn; received messages go to
// its channel.
type v5 struct {
	*paho.Client
	got  chan *paho.Publish
	conn net.Conn
}

// connectV5 sends CONNECT over conn and returns the client and CONNACK (or
// the error paho reported).
func connectV5(t testing.TB, conn net.Conn, cp *paho.Connect) (*v5, *paho.Connack, error) {
	t.Helper()
	c := &v5{got: make(chan *paho.Publish, 16), conn: conn}
	c.Client = paho.NewClient(paho.ClientConfig{
		// paho writes a packet in several Writes; on anything but a
		// *net.TCPConn (writev) its pinger's may interleave without a lock.
		Conn: packets.NewThreadSafeConn(conn),
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){
			func(pr paho.PublishReceived) (bool, error) { c.got <- pr.Packet; return true, nil },
		},
	})
	if cp.KeepAlive == 0 {
		cp.KeepAlive = 30
	}
	cp.CleanStart = true
	ctx, cancel := context.WithTimeout(context.Background(), mqtttest.Timeout)
	defer cancel()
	ack, err := c.Connect(ctx, cp)
	t.Cleanup(func() {
		if err == nil {
			c.Disconnect(&paho.Disconnect{})
		}
		conn.Close()
	})
	return c, ack, err
}

// mustConnectV5 is connectV5 that must succeed.
func mustConnectV5(t testing.TB, conn net.Conn, cp *paho.Connect) *v5 {
	t.Helper()
	c, ack, err := connectV5(t, conn, cp)
	if err != nil {
		t.Fatalf("connect %s: %v", cp.ClientID, err)
	}
	if ack.ReasonCode != 0 {
		t.Fatalf("connect %s: CONNACK 0x%02X, want success", cp.ClientID, ack.ReasonCode)
	}
	return c
}

func (c *v5) subscribe(t testing.TB, filter string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), mqtttest.Timeout)
	defer cancel()
	sa, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: 1}}})
	if err != nil {
		t.Fatalf("subscribe %s: %v", filter, err)
	}
	if len(sa.Reasons) != 1 || sa.Reasons[0] > 2 {
		t.Fatalf("subscribe %s: SUBACK %v, want granted", filter, sa.Reasons)
	}
}

func (c *v5) publish(t testing.TB, topic, payload string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), mqtttest.Timeout)
	defer cancel()
	r, err := c.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Payload: []byte(payload)})
	if err != nil {
		t.Fatalf("publish %s: %v", topic, err)
	}
	if r.ReasonCode != 0 {
		t.Fatalf("publish %s: PUBACK 0x%02X, want success", topic, r.ReasonCode)
	}
}

func (c *v5) expect(t testing.TB, topic, payload string) {
	t.Helper()
	select {
	case m := <-c.got:
		if m.Topic != topic || string(m.Payload) != payload {
			t.Fatalf("got %s %q, want %s %q", m.Topic, m.Payload, topic, payload)
		}
	case <-time.After(mqtttest.Timeout):
		t.Fatalf("nothing received, want %s %q", topic, payload)
	}
}

// dialTLS opens a TLS connection to addr and completes the handshake.
func dialTLS(t testing.TB, addr string, cfg *tls.Config) (*tls.Conn, error) {
	t.Helper()
	d := &net.Dialer{Timeout: mqtttest.Timeout}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return c, nil
}

func contextTimeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), mqtttest.Timeout)
}

package listeners_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetmq/fleetmq/broker/internal/mqtttest"
	"github.com/fleetmq/fleetmq/broker/listeners"
	"github.com/fleetmq/fleetmq/broker/packets"
)

func TestParseClientAuth(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want listeners.ClientAuth
		err  bool
	}{
		{"", listeners.ClientAuthNone, false},
		{"none", listeners.ClientAuthNone, false},
		{"optional", listeners.ClientAuthOptional, false},
		{"required", listeners.ClientAuthRequired, false},
		{"Required", 0, true},
		{"yes", 0, true},
	} {
		got, err := listeners.ParseClientAuth(tt.in)
		if (err != nil) != tt.err || (!tt.err && got != tt.want) {
			t.Errorf("ParseClientAuth(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.err)
		}
		if !tt.err && got.String() != strings.ToLower(cmpOr(tt.in, "none")) {
			t.Errorf("%v.String() = %q", got, got.String())
		}
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Files that cannot work are refused by NewTLS with an error naming them.
func TestNewTLSErrors(t *testing.T) {
	p := newPKI(t)
	other := newCA(t, "other CA").issue(t, "broker", true)
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	mismatched := write("mismatched.key", other.keyPEM)
	garbage := write("garbage.pem", []byte("not PEM"))
	tests := []struct {
		name   string
		mutate func(*listeners.TLSOptions)
		want   string
	}{
		{"missing certificate", func(o *listeners.TLSOptions) { o.CertFile = filepath.Join(dir, "nope.crt") }, "nope.crt"},
		{"no key file named", func(o *listeners.TLSOptions) { o.KeyFile = "" }, "needs a certificate file and a key file"},
		{"key of another certificate", func(o *listeners.TLSOptions) { o.KeyFile = mismatched }, "mismatched.key"},
		{"certificate not PEM", func(o *listeners.TLSOptions) { o.CertFile = garbage }, "garbage.pem"},
		{"CA without certificates", func(o *listeners.TLSOptions) { o.CAFile = garbage }, "garbage.pem: no PEM certificate"},
		{"client auth without CA", func(o *listeners.TLSOptions) { o.CAFile = "" }, "client auth required needs a CA file"},
		{"common name without client auth", func(o *listeners.TLSOptions) {
			o.ClientAuth, o.UseCommonNameAsUsername = listeners.ClientAuthNone, true
		}, "needs client auth optional or required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := p.options(listeners.ClientAuthRequired)
			tt.mutate(&o)
			_, err := listeners.NewTLS(o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewTLS error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// Both paho clients connect over TLS, verify the server certificate, and
// exchange messages with each other.
func TestTLSPahoClients(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	srv := newBroker(t, nil, nil)
	addr, _ := serveTLS(t, srv, p.options(listeners.ClientAuthNone))

	got := make(chan mqtt.Message, 4)
	opts := mqtt.NewClientOptions().AddBroker("tls://" + addr).SetClientID("v311").
		SetTLSConfig(p.clientConfig()).SetAutoReconnect(false).SetConnectTimeout(mqtttest.Timeout)
	c3 := mqtt.NewClient(opts)
	if tok := c3.Connect(); !tok.WaitTimeout(mqtttest.Timeout) || tok.Error() != nil {
		t.Fatalf("paho.mqtt.golang connect over TLS: %v", tok.Error())
	}
	defer c3.Disconnect(0)
	if tok := c3.Subscribe("tls/#", 1, func(_ mqtt.Client, m mqtt.Message) { got <- m }); !tok.WaitTimeout(mqtttest.Timeout) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	conn, err := dialTLS(t, addr, p.clientConfig())
	if err != nil {
		t.Fatalf("TLS dial: %v", err)
	}
	if s := conn.ConnectionState().PeerCertificates[0].SerialNumber; s.Cmp(p.server.serial) != 0 {
		t.Fatalf("server certificate serial %v, want %v", s, p.server.serial)
	}
	c5 := mustConnectV5(t, conn, &paho.Connect{ClientID: "v5"})
	c5.subscribe(t, "tls/#")
	c5.publish(t, "tls/from5", "hello")
	c5.expect(t, "tls/from5", "hello")
	select {
	case m := <-got:
		if m.Topic() != "tls/from5" || string(m.Payload()) != "hello" {
			t.Fatalf("3.1.1 client got %s %q", m.Topic(), m.Payload())
		}
	case <-time.After(mqtttest.Timeout):
		t.Fatal("3.1.1 client received nothing")
	}
	if tok := c3.Publish("tls/from3", 1, false, "hi"); !tok.WaitTimeout(mqtttest.Timeout) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	c5.expect(t, "tls/from3", "hi")
}

// Client certificate modes: what connects and what is refused (and logged).
func TestClientAuth(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	good := p.ca.issue(t, "device-1", false).tls(t)
	foreign := newCA(t, "other CA").issue(t, "device-1", false).tls(t)
	tests := []struct {
		mode    listeners.ClientAuth
		cert    string // "", "good" or "foreign"
		ok      bool
		logged  string // what the broker logs when refused
		clients int
	}{
		{listeners.ClientAuthRequired, "", false, "client didn't provide a certificate", 0},
		{listeners.ClientAuthRequired, "foreign", false, "certificate signed by unknown authority", 0},
		{listeners.ClientAuthRequired, "good", true, "", 0},
		{listeners.ClientAuthOptional, "", true, "", 0},
		{listeners.ClientAuthOptional, "good", true, "", 0},
		{listeners.ClientAuthOptional, "foreign", false, "certificate signed by unknown authority", 0},
		{listeners.ClientAuthNone, "foreign", true, "", 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/cert=%q", tt.mode, tt.cert), func(t *testing.T) {
			log, logs := newLog()
			srv := newBroker(t, nil, log)
			o := p.options(tt.mode)
			o.Log = log
			addr, _ := serveTLS(t, srv, o)
			cfg := p.clientConfig()
			switch tt.cert {
			case "good":
				cfg.Certificates = []tls.Certificate{good}
			case "foreign":
				// Go's client only offers a certificate from a CA the server
				// names; a misconfigured device sends it anyway.
				cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &foreign, nil }
			}
			raw, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			conn := tls.Client(raw, cfg)
			_, ack, err := connectV5(t, conn, &paho.Connect{ClientID: "c"})
			if tt.ok {
				if err != nil || ack.ReasonCode != 0 {
					t.Fatalf("connect: %v (ack %+v), want success", err, ack)
				}
				return
			}
			if err == nil {
				t.Fatalf("connect succeeded (CONNACK 0x%02X), want the handshake refused", ack.ReasonCode)
			}
			waitLog(t, logs, "TLS handshake failed", raw.LocalAddr().String(), tt.logged)
		})
	}
}

// A verified certificate's CN is the username: no password needed, the ACL
// of that user applies, the CONNECT's username is ignored, and unknown or
// disabled users are refused.
func TestCommonNameAsUsername(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	log, logs := newLog()
	defer func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	}()
	srv := newBroker(t, testPolicy(t), log)
	o := p.options(listeners.ClientAuthOptional)
	o.UseCommonNameAsUsername = true
	addr, _ := serveTLS(t, srv, o)
	tcp := serveTCP(t, srv)

	// A password client on plain TCP watches every device.
	conn, err := net.Dial("tcp", tcp)
	if err != nil {
		t.Fatal(err)
	}
	watcher := mustConnectV5(t, conn, &paho.Connect{ClientID: "watcher", Username: "sensor", UsernameFlag: true, Password: []byte("pw"), PasswordFlag: true})
	watcher.subscribe(t, "devices/#")

	dial := func(t *testing.T, cn string) net.Conn {
		t.Helper()
		var certs []tls.Certificate
		if cn != "" {
			certs = append(certs, p.ca.issue(t, cn, false).tls(t))
		}
		c, err := dialTLS(t, addr, p.clientConfig(certs...))
		if err != nil {
			t.Fatalf("TLS dial: %v", err)
		}
		return c
	}

	t.Run("certificate user", func(t *testing.T) {
		// It claims to be "sensor" in CONNECT: the certificate wins.
		c := mustConnectV5(t, dial(t, "device-1"), &paho.Connect{ClientID: "d1", Username: "sensor", UsernameFlag: true, Password: []byte("wrong"), PasswordFlag: true})
		c.subscribe(t, "devices/device-1/#")
		c.publish(t, "devices/device-1/temp", "21")
		watcher.expect(t, "devices/device-1/temp", "21")
		c.expect(t, "devices/device-1/temp", "21")

		ctx, cancel := contextTimeout()
		defer cancel()
		r, err := c.Publish(ctx, &paho.Publish{Topic: "devices/sensor/temp", QoS: 1, Payload: []byte("x")})
		if r == nil || r.ReasonCode != byte(packets.NotAuthorized) { // paho also reports it as err
			t.Fatalf("publish outside device-1's ACL: %v, %+v; want PUBACK 0x87", err, r)
		}
		sa, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "devices/#", QoS: 1}}})
		if sa == nil || len(sa.Reasons) != 1 || sa.Reasons[0] != byte(packets.NotAuthorized) {
			t.Fatalf("subscribe devices/# as device-1: %v, %+v; want 0x87 (sensor's rights must not apply)", err, sa)
		}
	})
	for _, tt := range []struct{ name, cn string }{{"disabled user", "blocked"}, {"unknown user", "stranger"}} {
		t.Run(tt.name, func(t *testing.T) {
			_, ack, err := connectV5(t, dial(t, tt.cn), &paho.Connect{ClientID: "x"})
			if err == nil || ack == nil || ack.ReasonCode != byte(packets.NotAuthorized) {
				t.Fatalf("connect with certificate CN %q: %v, %+v; want CONNACK 0x87", tt.cn, err, ack)
			}
		})
	}
	t.Run("no certificate: password", func(t *testing.T) {
		c := mustConnectV5(t, dial(t, ""), &paho.Connect{ClientID: "pw", Username: "device-1", UsernameFlag: true, Password: []byte("pw"), PasswordFlag: true})
		c.publish(t, "devices/device-1/pw", "ok")
		_, ack, err := connectV5(t, dial(t, ""), &paho.Connect{ClientID: "pw2", Username: "device-1", UsernameFlag: true, Password: []byte("bad"), PasswordFlag: true})
		if err == nil || ack == nil || ack.ReasonCode != byte(packets.BadUserNameOrPassword) {
			t.Fatalf("wrong password without certificate: %v, %+v; want CONNACK 0x86", err, ack)
		}
	})
}

// Rotating the mounted Secret the kubelet way: new handshakes get the new
// certificate, established connections stay up, a bad update keeps the
// certificate in force (and is logged), a good one after it is taken.
func TestCertificateRotation(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	log, logs := newLog()
	srv := newBroker(t, nil, nil)
	o := p.options(listeners.ClientAuthNone)
	o.Log = log
	addr, lt := serveTLS(t, srv, o)

	serialOf := func() string {
		c, err := dialTLS(t, addr, p.clientConfig())
		if err != nil {
			return "dial: " + err.Error()
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	if got := serialOf(); got != p.server.serial.String() {
		t.Fatalf("serial %s, want %s", got, p.server.serial)
	}
	conn, err := dialTLS(t, addr, p.clientConfig())
	if err != nil {
		t.Fatal(err)
	}
	old := mustConnectV5(t, conn, &paho.Connect{ClientID: "old"})
	old.subscribe(t, "rot/#")

	next := p.ca.issue(t, "broker", true)
	p.secret.update(t, map[string][]byte{"tls.crt": next.certPEM, "tls.key": next.keyPEM, "ca.crt": p.ca.pem})
	mqtttest.WaitFor(t, "new handshakes to get the new certificate", func() bool { return serialOf() == next.serial.String() })
	waitLog(t, logs, "TLS certificate reloaded", "serial="+next.serial.String())
	if lt.Certificate().SerialNumber.Cmp(next.serial) != 0 {
		t.Errorf("Certificate() serial %v, want %v", lt.Certificate().SerialNumber, next.serial)
	}

	conn2, err := dialTLS(t, addr, p.clientConfig())
	if err != nil {
		t.Fatal(err)
	}
	fresh := mustConnectV5(t, conn2, &paho.Connect{ClientID: "new"})
	fresh.publish(t, "rot/a", "after rotation")
	old.expect(t, "rot/a", "after rotation")
	old.publish(t, "rot/b", "old connection still writes")
	old.expect(t, "rot/b", "old connection still writes")

	// A certificate with somebody else's key: refused, the current one stays.
	bad := p.ca.issue(t, "broker", true)
	p.secret.update(t, map[string][]byte{"tls.crt": bad.certPEM, "tls.key": next.keyPEM, "ca.crt": p.ca.pem})
	waitLog(t, logs, "TLS certificate refused; keeping the one in force", "serial="+next.serial.String())
	if got := serialOf(); got != next.serial.String() {
		t.Fatalf("after a bad update the serial is %s, want %s (kept)", got, next.serial)
	}
	third := p.ca.issue(t, "broker", true)
	p.secret.update(t, map[string][]byte{"tls.crt": third.certPEM, "tls.key": third.keyPEM, "ca.crt": p.ca.pem})
	mqtttest.WaitFor(t, "the next good certificate", func() bool { return serialOf() == third.serial.String() })
	old.publish(t, "rot/c", "still here")
	old.expect(t, "rot/c", "still here")
}

// A change no file event reports (the certificate is a symlink into a
// directory nobody watches) is found by the periodic re-check.
func TestCertificateReloadTimer(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	real := t.TempDir()
	write := func(l leaf) {
		for name, data := range map[string][]byte{"tls.crt": l.certPEM, "tls.key": l.keyPEM} {
			tmp := filepath.Join(real, name+".tmp")
			if err := os.WriteFile(tmp, data, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, filepath.Join(real, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(p.server)
	watched := t.TempDir()
	for _, name := range []string{"tls.crt", "tls.key"} {
		if err := os.Symlink(filepath.Join(real, name), filepath.Join(watched, name)); err != nil {
			t.Fatal(err)
		}
	}
	srv := newBroker(t, nil, nil)
	addr, lt := serveTLS(t, srv, listeners.TLSOptions{
		CertFile: filepath.Join(watched, "tls.crt"), KeyFile: filepath.Join(watched, "tls.key"),
		ReloadInterval: 100 * time.Millisecond,
	})
	next := p.ca.issue(t, "broker", true)
	write(next)
	mqtttest.WaitFor(t, "the timer to reload the certificate", func() bool { return lt.Certificate().SerialNumber.Cmp(next.serial) == 0 })
	c, err := dialTLS(t, addr, p.clientConfig())
	if err != nil {
		t.Fatal(err)
	}
	if got := c.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(next.serial) != 0 {
		t.Fatalf("serial %v, want %v", got, next.serial)
	}
}

// Clients that never finish a handshake, or send something other than a
// ClientHello, are closed with a log line, and leave no goroutine behind.
func TestBadHandshakes(t *testing.T) {
	// Not parallel: it counts goroutines.
	p := newPKI(t)
	log, logs := newLog()
	srv := newBroker(t, nil, log)
	o := p.options(listeners.ClientAuthNone)
	o.Log = log
	o.HandshakeTimeout = 300 * time.Millisecond
	addr, _ := serveTLS(t, srv, o)
	// Warm up: a good connection, so lazily started runtime goroutines exist.
	if c, err := dialTLS(t, addr, p.clientConfig()); err != nil {
		t.Fatal(err)
	} else {
		c.Close()
	}
	baseline := settledGoroutines()

	expectClosed := func(t *testing.T, c net.Conn) {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(mqtttest.Timeout))
		_, err := io.ReadAll(c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("the broker did not close the connection")
		}
	}
	t.Run("silent client", func(t *testing.T) {
		var conns []net.Conn
		for range 5 {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			conns = append(conns, c)
		}
		for _, c := range conns {
			expectClosed(t, c)
		}
		waitLog(t, logs, "TLS handshake timed out", conns[0].LocalAddr().String(), "timeout=300ms")
	})
	t.Run("plain MQTT on the TLS port", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write(mqtttest.V5("plain").Append(nil))
		expectClosed(t, c)
		waitLog(t, logs, "TLS handshake failed", c.LocalAddr().String(), "first record does not look like a TLS handshake")
	})
	t.Run("garbage", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte{0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5})
		expectClosed(t, c)
		waitLog(t, logs, "TLS handshake failed", c.LocalAddr().String())
	})
	mqtttest.WaitFor(t, fmt.Sprintf("goroutines back to %d", baseline), func() bool {
		return runtime.NumGoroutine() <= baseline
	})
	if srv.Stats().ClientsConnected != 0 {
		t.Errorf("ClientsConnected = %d, want 0", srv.Stats().ClientsConnected)
	}
}

// settledGoroutines is the goroutine count once it stops falling.
func settledGoroutines() int {
	n := runtime.NumGoroutine()
	for range 20 {
		time.Sleep(20 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m == n {
			return n
		}
		n = m
	}
	return n
}

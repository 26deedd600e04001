package listeners

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"os"
	"testing"
	"time"
)

// selfSigned is a throwaway server certificate.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "x"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// A read deadline set before the handshake (the broker's CONNECT timeout)
// still holds after it: the handshake's own deadline must not erase it.
func TestConnKeepsReadDeadlineAcrossHandshake(t *testing.T) {
	cert := selfSigned(t)
	st := &tlsState{cfg: &tls.Config{Certificates: []tls.Certificate{cert}}}
	lt := &TLS{opts: TLSOptions{HandshakeTimeout: 5 * time.Second}}
	lt.log = discard()
	lt.cur.Store(st)
	lt.base = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return lt.cur.Load().cfg, nil }}

	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	sc := &Conn{Conn: tls.Server(a, lt.base), t: lt}
	go func() {
		cc := tls.Client(b, &tls.Config{InsecureSkipVerify: true})
		cc.Handshake() // then sends nothing
	}()
	sc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	done := make(chan error, 1)
	go func() {
		_, err := sc.Read(make([]byte, 1))
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Read error %v, want the deadline set before the handshake", err)
		}
		if !sc.ConnectionState().HandshakeComplete {
			t.Fatal("handshake did not complete")
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Read still blocked: the read deadline was lost in the handshake")
	}
}

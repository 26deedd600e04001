package authsync

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fleetmq/fleetmq/internal/pki"
)

// tlsBroker serves GET /v1/auth over TLS with a certificate for names from
// a CA of its own, and returns its address and that CA's trust bundle.
func tlsBroker(t *testing.T, names ...string) (addr string, trust []byte) {
	t.Helper()
	res, err := pki.Ensure(pki.Material{}, "test CA", names, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(res.Material.ServerCert, res.Material.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `{"revision": 7, "hash": "h"}`)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "https://"), res.Material.Trust()
}

func TestTLSClients(t *testing.T) {
	const name = "acme-headless.tenant.svc"
	addr, trust := tlsBroker(t, name)
	_, otherTrust := tlsBroker(t, name)
	var clients TLSClients
	ctx := context.Background()

	// Dialing an IP, verifying the Service name against the Broker's CA.
	got, err := clients.Client("tok", &TLS{ServerName: name, RootsPEM: trust}).GetAuth(ctx, addr)
	if err != nil || got.Revision != 7 {
		t.Fatalf("GetAuth with the Broker's CA: %+v, %v", got, err)
	}
	if a, b := clients.Client("tok", &TLS{ServerName: name, RootsPEM: trust}).(*HTTPClient).HTTP,
		clients.Client("other", &TLS{ServerName: name, RootsPEM: trust}).(*HTTPClient).HTTP; a != b {
		t.Error("a new transport per call: connections are not reused")
	}

	for _, tc := range []struct {
		what string
		tls  *TLS
		addr string
		want string
	}{
		{"another CA", &TLS{ServerName: name, RootsPEM: otherTrust}, addr, "certificate signed by unknown authority"},
		{"another name", &TLS{ServerName: "other-headless.tenant.svc", RootsPEM: trust}, addr, "other-headless.tenant.svc"},
		{"no TLS settings", nil, addr, "refusing plain HTTP"},
		{"a plain URL", &TLS{ServerName: name, RootsPEM: trust}, "http://" + addr, "refusing plain HTTP"},
	} {
		t.Run(tc.what, func(t *testing.T) {
			_, err := clients.Client("tok", tc.tls).GetAuth(ctx, tc.addr)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("GetAuth: %v, want an error with %q", err, tc.want)
			}
			if untrusted := errors.Is(err, ErrUntrusted); untrusted != (tc.tls != nil && !strings.HasPrefix(tc.addr, "http://")) {
				t.Errorf("errors.Is(err, ErrUntrusted) = %v for %v", untrusted, err)
			}
		})
	}
}

// Forget drops a deleted Broker's transport, and only its: the next client
// for that name gets a new one, another Broker keeps its own.
func TestTLSClientsForget(t *testing.T) {
	_, trust := tlsBroker(t, "a-headless.ns.svc", "b-headless.ns.svc")
	var c TLSClients
	a := &TLS{ServerName: "a-headless.ns.svc", RootsPEM: trust}
	b := &TLS{ServerName: "b-headless.ns.svc", RootsPEM: trust}
	ha, err := c.http(a)
	if err != nil {
		t.Fatal(err)
	}
	hb, _ := c.http(b)
	if again, _ := c.http(a); again != ha {
		t.Fatal("the same Broker got a new transport without a change of trust")
	}
	c.Forget(a.ServerName)
	if len(c.m) != 1 {
		t.Errorf("%d transports kept after Forget, want 1 (the other Broker's)", len(c.m))
	}
	if again, _ := c.http(a); again == ha {
		t.Error("a forgotten Broker's transport was handed out again")
	}
	if again, _ := c.http(b); again != hb {
		t.Error("Forget of one Broker replaced another's transport")
	}
}

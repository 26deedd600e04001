package pki

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"testing"
	"time"
)

var (
	t0    = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	names = []string{"acme-headless.tenant.svc", "*.acme-headless.tenant.svc"}
)

func ensure(t *testing.T, cur Material, now time.Time) Result {
	t.Helper()
	res, err := Ensure(cur, "fleetmq acme CA", names, now)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	return res
}

func whats(cs []Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.What)
	}
	return out
}

func TestEnsureIssuesAChainThatVerifies(t *testing.T) {
	res := ensure(t, Material{}, t0)
	if got := whats(res.Changes); len(got) != 2 || got[0] != CAIssued || got[1] != ServerCertIssued {
		t.Fatalf("changes = %v, want [CAIssued ServerCertIssued]", got)
	}
	m := res.Material
	for _, name := range []string{"acme-headless.tenant.svc", "acme-0.acme-headless.tenant.svc"} {
		if err := VerifyServer(m.ServerCert, m.Trust(), name, t0.Add(time.Hour)); err != nil {
			t.Errorf("verify %s: %v", name, err)
		}
	}
	if err := VerifyServer(m.ServerCert, m.Trust(), "other-headless.tenant.svc", t0); err == nil {
		t.Error("a name the certificate does not carry verified")
	}
	ca, err := ParseCA(m.CACert, m.CAKey)
	if err != nil {
		t.Fatal(err)
	}
	if ca.Cert.PublicKeyAlgorithm != x509.ECDSA || !ca.Cert.IsCA {
		t.Errorf("CA: algorithm %v, IsCA %v; want ECDSA CA", ca.Cert.PublicKeyAlgorithm, ca.Cert.IsCA)
	}
	leaf, _ := ParseCertificate(m.ServerCert)
	if got, want := leaf.NotAfter.Sub(t0), ServerValidity; got != want {
		t.Errorf("serving certificate valid for %v, want %v", got, want)
	}
	if !res.NextCheck.Equal(RenewAt(leaf)) {
		t.Errorf("NextCheck %v, want the serving certificate's renewal %v", res.NextCheck, RenewAt(leaf))
	}
	// A foreign CA does not verify it.
	other := ensure(t, Material{}, t0).Material
	if err := VerifyServer(m.ServerCert, other.Trust(), names[0], t0); err == nil {
		t.Error("serving certificate verified against another Broker's CA")
	}
}

func TestEnsureKeepsWhatIsValid(t *testing.T) {
	first := ensure(t, Material{}, t0).Material
	res := ensure(t, first, t0.Add(30*24*time.Hour))
	if len(res.Changes) != 0 {
		t.Fatalf("changes = %v, want none", res.Changes)
	}
	if !bytes.Equal(res.Material.ServerCert, first.ServerCert) || !bytes.Equal(res.Material.CAKey, first.CAKey) {
		t.Error("valid material was rewritten")
	}
}

func TestEnsureRenewsTheServingCertificate(t *testing.T) {
	first := ensure(t, Material{}, t0).Material
	at := t0.Add(ServerValidity * 2 / 3).Add(time.Minute) // the last third
	res := ensure(t, first, at)
	if got := whats(res.Changes); len(got) != 1 || got[0] != ServerCertIssued {
		t.Fatalf("changes = %v, want [ServerCertIssued]", got)
	}
	if !bytes.Equal(res.Material.CACert, first.CACert) {
		t.Error("the CA changed on a serving certificate renewal")
	}
	leaf, _ := ParseCertificate(res.Material.ServerCert)
	if !leaf.NotAfter.Equal(at.Add(ServerValidity)) {
		t.Errorf("renewed certificate ends %v, want %v", leaf.NotAfter, at.Add(ServerValidity))
	}
}

func TestEnsureRotatesTheCAKeepingTheOldTrusted(t *testing.T) {
	first := ensure(t, Material{}, t0).Material
	at := t0.Add(CAValidity * 2 / 3).Add(time.Hour)
	res := ensure(t, first, at)
	got := whats(res.Changes)
	if len(got) != 2 || got[0] != CARotated || got[1] != ServerCertIssued {
		t.Fatalf("changes = %v, want [CARotated ServerCertIssued]", got)
	}
	m := res.Material
	if !bytes.Equal(m.OldCACert, first.CACert) {
		t.Fatal("the old CA is not kept for the overlap")
	}
	// During the overlap the trust bundle accepts a pod still presenting a
	// certificate of the old CA, and one with the new certificate.
	oldServer, _, err := mustCA(t, first).IssueServer(names, at)
	if err != nil {
		t.Fatal(err)
	}
	for what, cert := range map[string][]byte{"old": oldServer, "new": m.ServerCert} {
		if err := VerifyServer(cert, m.Trust(), names[0], at); err != nil {
			t.Errorf("%s certificate during the overlap: %v", what, err)
		}
	}
	// The new serving certificate is from the new CA only.
	if err := VerifyServer(m.ServerCert, first.CACert, names[0], at); err == nil {
		t.Error("the new serving certificate verifies against the old CA")
	}
	oldCA, _ := ParseCertificate(first.CACert)
	if !res.NextCheck.After(at) || res.NextCheck.After(oldCA.NotAfter) {
		t.Errorf("NextCheck %v, want by the old CA's expiry %v", res.NextCheck, oldCA.NotAfter)
	}
	// Once the old CA has expired it leaves the bundle.
	later := ensure(t, m, oldCA.NotAfter.Add(time.Second))
	if later.Material.OldCACert != nil {
		t.Error("an expired CA is still trusted")
	}
}

func TestEnsureReplacesWhatIsBroken(t *testing.T) {
	good := ensure(t, Material{}, t0).Material
	foreign := ensure(t, Material{}, t0).Material
	tests := []struct {
		name string
		cur  Material
		want []string
	}{
		{"CA key lost", Material{CACert: good.CACert, ServerCert: good.ServerCert, ServerKey: good.ServerKey}, []string{CAIssued, ServerCertIssued}},
		{"CA key of another CA", Material{CACert: good.CACert, CAKey: foreign.CAKey, ServerCert: good.ServerCert, ServerKey: good.ServerKey}, []string{CAIssued, ServerCertIssued}},
		{"serving certificate of another CA", Material{CACert: good.CACert, CAKey: good.CAKey, ServerCert: foreign.ServerCert, ServerKey: foreign.ServerKey}, []string{ServerCertIssued}},
		{"serving key of another certificate", Material{CACert: good.CACert, CAKey: good.CAKey, ServerCert: good.ServerCert, ServerKey: foreign.ServerKey}, []string{ServerCertIssued}},
		{"garbage", Material{CACert: []byte("x"), CAKey: []byte("y"), ServerCert: []byte("z"), ServerKey: []byte("w")}, []string{CAIssued, ServerCertIssued}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := ensure(t, tc.cur, t0.Add(time.Hour))
			got := whats(res.Changes)
			if len(got) != len(tc.want) || (len(got) > 0 && got[0] != tc.want[0]) {
				t.Fatalf("changes = %v, want %v", got, tc.want)
			}
			if err := VerifyServer(res.Material.ServerCert, res.Material.Trust(), names[0], t0.Add(time.Hour)); err != nil {
				t.Errorf("result does not verify: %v", err)
			}
		})
	}
	// A lost key keeps the readable old certificate trusted for the overlap.
	res := ensure(t, Material{CACert: good.CACert}, t0)
	if !bytes.Equal(res.Material.OldCACert, good.CACert) {
		t.Error("the CA certificate whose key was lost is not kept as the old CA")
	}
}

func TestEnsureReissuesOnNewNames(t *testing.T) {
	first := ensure(t, Material{}, t0).Material
	res, err := Ensure(first, "fleetmq acme CA", []string{"acme-headless.other.svc"}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if got := whats(res.Changes); len(got) != 1 || got[0] != ServerCertIssued {
		t.Fatalf("changes = %v, want [ServerCertIssued]", got)
	}
}

// A real TLS handshake: a client trusting only the CA and verifying the
// headless Service name while dialing an IP accepts the server; a client
// trusting another CA refuses it with an unknown-authority error.
func TestHandshakeByNameOverIP(t *testing.T) {
	m := ensure(t, Material{}, time.Now()).Material
	pair, err := tls.X509KeyPair(m.ServerCert, m.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.(*tls.Conn).Handshake()
				_, _ = io.WriteString(c, "ok")
			}()
		}
	}()
	dial := func(trust []byte) error {
		pool, err := Pool(trust)
		if err != nil {
			return err
		}
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: names[0], MinVersion: tls.VersionTLS12})
		if err != nil {
			return err
		}
		c.Close()
		return nil
	}
	if err := dial(m.Trust()); err != nil {
		t.Fatalf("handshake with the Broker's CA: %v", err)
	}
	foreign := ensure(t, Material{}, time.Now()).Material
	err = dial(foreign.Trust())
	var unknown x509.UnknownAuthorityError
	var verr *tls.CertificateVerificationError
	if !errors.As(err, &verr) || !errors.As(err, &unknown) {
		t.Fatalf("handshake with another CA: %v, want an unknown authority error", err)
	}
}

func mustCA(t *testing.T, m Material) *CA {
	t.Helper()
	ca, err := ParseCA(m.CACert, m.CAKey)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

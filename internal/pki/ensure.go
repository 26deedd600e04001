package pki

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"slices"
	"time"
)

// Material is what a Broker's two PKI Secrets hold.
type Material struct {
	// CACert and CAKey are the CA in force (Secret <broker>-ca).
	CACert, CAKey []byte
	// OldCACert is the CA it replaced, still trusted until it expires, so
	// pods that have not yet seen their reissued certificate (a mounted
	// Secret takes up to a minute or two to update) keep being reached.
	OldCACert []byte
	// ServerCert (with the CA appended) and ServerKey are the broker pods'
	// serving certificate (Secret <broker>-admin-tls).
	ServerCert, ServerKey []byte
}

// Trust is the bundle a client of the admin API trusts: the CA in force
// and, during a rotation, the one before it.
func (m Material) Trust() []byte { return Bundle(m.CACert, m.OldCACert) }

// Change is one thing Ensure did, for an Event.
type Change struct {
	// What: CAIssued, CARotated or ServerCertIssued.
	What string
	// Why, in words.
	Why string
}

// Kinds of Change.
const (
	CAIssued         = "CAIssued"
	CARotated        = "CARotated"
	ServerCertIssued = "ServerCertIssued"
)

// Result is what Ensure decided.
type Result struct {
	Material Material
	Changes  []Change
	// NextCheck is when something will be due: a renewal, or the old CA
	// leaving the trust bundle.
	NextCheck time.Time
}

// Ensure brings cur to a valid state at now: a CA named caName that is not
// due for renewal, and a serving certificate from it for dnsNames (the
// first is the name clients verify) that is not due either. What is
// missing, unreadable, mismatched or due is replaced; everything else is
// kept byte for byte, so applying the result again changes nothing.
func Ensure(cur Material, caName string, dnsNames []string, now time.Time) (Result, error) {
	out := Result{Material: cur}
	m := &out.Material
	ca, err := ParseCA(cur.CACert, cur.CAKey)
	switch {
	case err != nil:
		why := "no CA yet"
		if len(cur.CACert) > 0 || len(cur.CAKey) > 0 {
			why = fmt.Sprintf("the stored CA is unusable (%v)", err)
			// A readable certificate whose key is lost still verifies
			// the pods' current certificates during the overlap.
			if old, perr := ParseCertificate(cur.CACert); perr == nil && old.IsCA {
				m.OldCACert = cur.CACert
			}
		}
		if ca, err = NewCA(caName, now); err != nil {
			return out, err
		}
		out.Changes = append(out.Changes, Change{What: CAIssued, Why: why})
		m.CACert, m.CAKey = ca.CertPEM, ca.KeyPEM
	case NeedsRenewal(ca.Cert, now):
		next, err := NewCA(caName, now)
		if err != nil {
			return out, err
		}
		out.Changes = append(out.Changes, Change{What: CARotated,
			Why: fmt.Sprintf("the CA expires at %s; the old one stays trusted until then", ca.Cert.NotAfter.UTC().Format(time.RFC3339))})
		m.OldCACert = cur.CACert
		ca = next
		m.CACert, m.CAKey = ca.CertPEM, ca.KeyPEM
	}
	var oldExpiry time.Time
	if len(m.OldCACert) > 0 {
		old, err := ParseCertificate(m.OldCACert)
		if err != nil || !now.Before(old.NotAfter) {
			m.OldCACert = nil
		} else {
			oldExpiry = old.NotAfter
		}
	}

	server, why := checkServer(m.ServerCert, m.ServerKey, ca, dnsNames, now)
	if why != "" {
		if m.ServerCert, m.ServerKey, err = ca.IssueServer(dnsNames, now); err != nil {
			return out, err
		}
		out.Changes = append(out.Changes, Change{What: ServerCertIssued, Why: why})
		if server, err = ParseCertificate(m.ServerCert); err != nil {
			return out, err
		}
	}
	out.NextCheck = RenewAt(ca.Cert)
	if t := RenewAt(server); t.Before(out.NextCheck) {
		out.NextCheck = t
	}
	if !oldExpiry.IsZero() && oldExpiry.Before(out.NextCheck) {
		out.NextCheck = oldExpiry
	}
	return out, nil
}

// checkServer returns the serving certificate when it is fine, else why it
// must be reissued.
func checkServer(certPEM, keyPEM []byte, ca *CA, dnsNames []string, now time.Time) (*x509.Certificate, string) {
	if len(certPEM) == 0 || len(keyPEM) == 0 {
		return nil, "no serving certificate yet"
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return nil, fmt.Sprintf("the serving certificate and key are unusable (%v)", err)
	}
	leaf, err := ParseCertificate(certPEM)
	if err != nil {
		return nil, fmt.Sprintf("the serving certificate is unreadable (%v)", err)
	}
	if err := VerifyServer(certPEM, ca.CertPEM, dnsNames[0], now); err != nil {
		return nil, fmt.Sprintf("the serving certificate does not verify against the CA in force (%v)", err)
	}
	if !slices.Equal(leaf.DNSNames, dnsNames) {
		return nil, fmt.Sprintf("the serving certificate names %v, want %v", leaf.DNSNames, dnsNames)
	}
	if NeedsRenewal(leaf, now) {
		return nil, fmt.Sprintf("the serving certificate expires at %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return leaf, ""
}

package broker

import (
	"time"

	"github.com/fleetmq/fleetmq/broker/authz"
	"github.com/fleetmq/fleetmq/broker/packets"
)

// Principal is what a connection may do, resolved once at CONNECT so each
// check is cheap. Implementations must be safe for concurrent use and must
// not allocate on these calls: they run once per message.
//
// The outcome of authenticating is an authz.AuthResult, the one type the
// broker, its Authorizers and the auth bundle's policy share.
type Principal interface {
	CanPublish(topic []byte) bool
	CanSubscribe(filter string) bool
	CanRead(topic []byte) bool
	// Username is the user the principal stands for, checked by its
	// Authorizer; "" when none was (anonymous, or an open broker).
	Username() string
	// Anonymous reports a client that presented no username.
	Anonymous() bool
}

// Authorizer decides who may connect. The broker swaps Authorizers
// atomically on reload (Server.SetAuthorizer) and re-binds every live
// connection through Rebind.
type Authorizer interface {
	Authenticate(username string, hasUsername bool, password []byte, clientID string) (Principal, authz.AuthResult)
	// Rebind re-resolves a principal granted by an earlier Authorizer against
	// this one; a result other than AuthOK ends that client's connection.
	Rebind(old Principal, clientID string) (Principal, authz.AuthResult)
	// AllowAnonymous reports whether clients without a username get in.
	AllowAnonymous() bool
}

// allowAll is the principal of every client when no Authorizer is set.
// It vouches for no username (none was checked), but remembers whether the
// client presented one: a policy loaded later admits only the anonymous
// ones without a new CONNECT.
type allowAll struct{ hadUsername bool }

func (allowAll) CanPublish([]byte) bool   { return true }
func (allowAll) CanSubscribe(string) bool { return true }
func (allowAll) CanRead([]byte) bool      { return true }
func (allowAll) Username() string         { return "" }
func (a allowAll) Anonymous() bool        { return !a.hadUsername }

// openAuthorizer admits everyone; it is used when no Authorizer is set and
// anonymous access is allowed.
type openAuthorizer struct{}

func (openAuthorizer) Authenticate(_ string, hasUsername bool, _ []byte, _ string) (Principal, authz.AuthResult) {
	return allowAll{hadUsername: hasUsername}, authz.AuthOK
}
func (openAuthorizer) Rebind(old Principal, _ string) (Principal, authz.AuthResult) {
	if ap, ok := old.(allowAll); ok {
		return ap, authz.AuthOK
	}
	return allowAll{}, authz.AuthOK
}
func (openAuthorizer) AllowAnonymous() bool { return true }

// closedAuthorizer refuses everyone: anonymous access is off and no bundle
// has been loaded yet.
type closedAuthorizer struct{}

func (closedAuthorizer) Authenticate(_ string, hasUsername bool, _ []byte, _ string) (Principal, authz.AuthResult) {
	if hasUsername {
		return nil, authz.AuthBadCredentials
	}
	return nil, authz.AuthNotAuthorized
}
func (closedAuthorizer) Rebind(Principal, string) (Principal, authz.AuthResult) {
	return nil, authz.AuthNotAuthorized
}
func (closedAuthorizer) AllowAnonymous() bool { return false }

// VerifiedUserConn is implemented by connections whose transport has
// already authenticated the client: a TLS listener configured to take the
// username from the client certificate (listeners.Conn with
// UseCommonNameAsUsername) returns the verified certificate's subject CN.
// When ok, that name is the client's username, the CONNECT's username and
// password are ignored, and the Authorizer admits it through
// VerifiedAuthorizer: the verified certificate is the credential.
type VerifiedUserConn interface {
	VerifiedUsername() (name string, ok bool)
}

// VerifiedAuthorizer is implemented by Authorizers that can admit a
// username the transport has verified (VerifiedUserConn), without a
// password. They must still refuse users they do not know or that are
// disabled. An Authorizer without it refuses such clients (not authorized).
type VerifiedAuthorizer interface {
	AuthenticateVerified(username, clientID string) (Principal, authz.AuthResult)
}

// CachedAuthorizer is implemented by Authorizers that can decide some
// CONNECTs without the slow password hash: no username, or a password
// verified before (a cache hit). ok false means only Authenticate can
// decide. The broker lets such CONNECTs through at once and throttles only
// the ones that need a hash (authguard.go), so guessing cannot lock out a
// client whose password is known good. An Authorizer without it has every
// CONNECT with a username throttled alike.
type CachedAuthorizer interface {
	AuthenticateCached(username string, hasUsername bool, password []byte, clientID string) (p Principal, res authz.AuthResult, ok bool)
}

// authenticate decides a CONNECT with a, taking the username from the
// connection when its transport verified one (cp.Username is then set to
// it, for logs). What needs a password hash passes the guessing defence
// first (authguard.go).
func (c *client) authenticate(a Authorizer, cp *packets.Connect) (Principal, authz.AuthResult) {
	if vc, ok := c.conn.(VerifiedUserConn); ok {
		if name, ok := vc.VerifiedUsername(); ok {
			cp.Username, cp.HasUsername, cp.Password = name, true, nil
			return authenticateVerified(a, name, cp.ClientID)
		}
	}
	if ca, ok := a.(CachedAuthorizer); ok {
		if p, res, ok := ca.AuthenticateCached(cp.Username, cp.HasUsername, cp.Password, cp.ClientID); ok {
			return p, res
		}
	}
	g := &c.srv.guard
	source := sourceKey(c.remote)
	stats := &c.srv.stats
	switch g.throttled(source, cp.Username, time.Now()) {
	case throttledSource:
		stats.AuthThrottledSource.Add(1)
		return nil, authz.AuthThrottled
	case throttledUser:
		stats.AuthThrottledUser.Add(1)
		return nil, authz.AuthThrottled
	}
	p, res := a.Authenticate(cp.Username, cp.HasUsername, cp.Password, cp.ClientID)
	if res == authz.AuthBusy {
		stats.AuthBusy.Add(1)
	}
	g.record(source, cp.Username, res, time.Now())
	return p, res
}

// authenticateVerified admits a username vouched for without a password
// (a verified certificate, or a will's owner checked at its CONNECT) when
// a can (VerifiedAuthorizer); otherwise it is not authorized.
func authenticateVerified(a Authorizer, name, clientID string) (Principal, authz.AuthResult) {
	va, ok := a.(VerifiedAuthorizer)
	if !ok {
		return nil, authz.AuthNotAuthorized
	}
	return va.AuthenticateVerified(name, clientID)
}

func (o openAuthorizer) AuthenticateCached(username string, hasUsername bool, password []byte, clientID string) (Principal, authz.AuthResult, bool) {
	p, res := o.Authenticate(username, hasUsername, password, clientID)
	return p, res, true
}

func (c closedAuthorizer) AuthenticateCached(username string, hasUsername bool, password []byte, clientID string) (Principal, authz.AuthResult, bool) {
	p, res := c.Authenticate(username, hasUsername, password, clientID)
	return p, res, true
}

func (openAuthorizer) AuthenticateVerified(string, string) (Principal, authz.AuthResult) {
	return allowAll{hadUsername: true}, authz.AuthOK
}

func (closedAuthorizer) AuthenticateVerified(string, string) (Principal, authz.AuthResult) {
	return nil, authz.AuthNotAuthorized
}

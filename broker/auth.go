package broker

import "github.com/fleetmq/fleetmq/broker/packets"

// AuthResult is the outcome of authenticating a CONNECT.
type AuthResult int

// Authentication outcomes and the CONNACK codes they become.
const (
	AuthOK             AuthResult = iota
	AuthBadCredentials            // 3.1.1 code 4, v5 0x86
	AuthNotAuthorized             // 3.1.1 code 5, v5 0x87
)

// Principal is what a connection may do, resolved once at CONNECT so each
// check is cheap. Implementations must be safe for concurrent use and must
// not allocate on these calls: they run once per message.
type Principal interface {
	CanPublish(topic []byte) bool
	CanSubscribe(filter string) bool
	CanRead(topic []byte) bool
}

// Authorizer decides who may connect. The broker swaps Authorizers
// atomically on reload (Server.SetAuthorizer) and re-binds every live
// connection through Rebind.
type Authorizer interface {
	Authenticate(username string, hasUsername bool, password []byte, clientID string) (Principal, AuthResult)
	// Rebind re-resolves a principal granted by an earlier Authorizer against
	// this one; a result other than AuthOK ends that client's connection.
	Rebind(old Principal, clientID string) (Principal, AuthResult)
	// AllowAnonymous reports whether clients without a username get in.
	AllowAnonymous() bool
}

// allowAll is the principal of every client when no Authorizer is set.
type allowAll struct{ hadUsername bool }

func (allowAll) CanPublish([]byte) bool   { return true }
func (allowAll) CanSubscribe(string) bool { return true }
func (allowAll) CanRead([]byte) bool      { return true }

// openAuthorizer admits everyone; it is used when no Authorizer is set and
// anonymous access is allowed.
type openAuthorizer struct{}

func (openAuthorizer) Authenticate(_ string, hasUsername bool, _ []byte, _ string) (Principal, AuthResult) {
	return allowAll{hadUsername: hasUsername}, AuthOK
}
func (openAuthorizer) Rebind(old Principal, _ string) (Principal, AuthResult) {
	if ap, ok := old.(allowAll); ok {
		return ap, AuthOK
	}
	return allowAll{}, AuthOK
}
func (openAuthorizer) AllowAnonymous() bool { return true }

// closedAuthorizer refuses everyone: anonymous access is off and no bundle
// has been loaded yet.
type closedAuthorizer struct{}

func (closedAuthorizer) Authenticate(_ string, hasUsername bool, _ []byte, _ string) (Principal, AuthResult) {
	if hasUsername {
		return nil, AuthBadCredentials
	}
	return nil, AuthNotAuthorized
}
func (closedAuthorizer) Rebind(Principal, string) (Principal, AuthResult) {
	return nil, AuthNotAuthorized
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
	AuthenticateVerified(username, clientID string) (Principal, AuthResult)
}

// authenticate decides a CONNECT with a, taking the username from the
// connection when its transport verified one (cp.Username is then set to
// it, for logs).
func (c *client) authenticate(a Authorizer, cp *packets.Connect) (Principal, AuthResult) {
	if vc, ok := c.conn.(VerifiedUserConn); ok {
		if name, ok := vc.VerifiedUsername(); ok {
			cp.Username, cp.HasUsername, cp.Password = name, true, nil
			return authenticateVerified(a, name, cp.ClientID)
		}
	}
	return a.Authenticate(cp.Username, cp.HasUsername, cp.Password, cp.ClientID)
}

// authenticateVerified admits a username vouched for without a password
// (a verified certificate, or a will's owner checked at its CONNECT) when
// a can (VerifiedAuthorizer); otherwise it is not authorized.
func authenticateVerified(a Authorizer, name, clientID string) (Principal, AuthResult) {
	va, ok := a.(VerifiedAuthorizer)
	if !ok {
		return nil, AuthNotAuthorized
	}
	return va.AuthenticateVerified(name, clientID)
}

func (openAuthorizer) AuthenticateVerified(string, string) (Principal, AuthResult) {
	return allowAll{hadUsername: true}, AuthOK
}

func (closedAuthorizer) AuthenticateVerified(string, string) (Principal, AuthResult) {
	return nil, AuthNotAuthorized
}

package broker

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

package admin

import (
	"github.com/fleetmq/fleetmq/broker"
	"github.com/fleetmq/fleetmq/broker/authz"
)

// PolicyAuthorizer makes a compiled auth bundle the broker's Authorizer.
// The Loader uses it for every bundle it applies; tests and tools that run
// a broker with a fixed bundle use it directly.
func PolicyAuthorizer(p *authz.Policy) broker.Authorizer { return policyAuthorizer{p} }

type policyAuthorizer struct{ p *authz.Policy }

func (a policyAuthorizer) Authenticate(username string, hasUsername bool, password []byte, clientID string) (broker.Principal, authz.AuthResult) {
	return principal(a.p.Authenticate(username, hasUsername, password, clientID))
}

// AuthenticateCached decides without PBKDF2 when the policy can (see
// authz.Policy.AuthenticateCached), so the broker never throttles a
// password it has verified before.
func (a policyAuthorizer) AuthenticateCached(username string, hasUsername bool, password []byte, clientID string) (broker.Principal, authz.AuthResult, bool) {
	id, res, ok := a.p.AuthenticateCached(username, hasUsername, password, clientID)
	p, res := principal(id, res)
	return p, res, ok
}

// AuthenticateVerified admits a username a verified client certificate
// vouches for, without a password (see authz.Policy.AuthenticateVerified).
func (a policyAuthorizer) AuthenticateVerified(username, clientID string) (broker.Principal, authz.AuthResult) {
	return principal(a.p.AuthenticateVerified(username, clientID))
}

// Rebind moves an identity to the new policy. A principal that did not come
// from a policy (the broker ran open before its first bundle) keeps its
// place only as an anonymous client the new policy admits; a client that had
// presented credentials must reconnect so they can be checked.
func (a policyAuthorizer) Rebind(old broker.Principal, clientID string) (broker.Principal, authz.AuthResult) {
	if id, ok := old.(*authz.Identity); ok {
		return principal(a.p.Rebind(id))
	}
	if old.Anonymous() && a.p.AllowAnonymous() {
		return principal(a.p.Authenticate("", false, nil, clientID))
	}
	return nil, authz.AuthNotAuthorized
}

func (a policyAuthorizer) AllowAnonymous() bool { return a.p.AllowAnonymous() }

// principal converts the policy's answer; a nil *Identity must become a nil
// interface, not an interface holding a nil pointer.
func principal(id *authz.Identity, res authz.AuthResult) (broker.Principal, authz.AuthResult) {
	if res != authz.AuthOK {
		return nil, res
	}
	return id, authz.AuthOK
}

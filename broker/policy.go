package broker

import "github.com/fleetmq/fleetmq/broker/authz"

// PolicyAuthorizer makes a compiled auth bundle the broker's Authorizer.
func PolicyAuthorizer(p *authz.Policy) Authorizer { return policyAuthorizer{p} }

type policyAuthorizer struct{ p *authz.Policy }

func (a policyAuthorizer) Authenticate(username string, hasUsername bool, password []byte, clientID string) (Principal, AuthResult) {
	id, res := a.p.Authenticate(username, hasUsername, password, clientID)
	if res != authz.AuthOK {
		return nil, AuthResult(res)
	}
	return id, AuthOK
}

// AuthenticateVerified admits a username a verified client certificate
// vouches for, without a password (see authz.Policy.AuthenticateVerified).
func (a policyAuthorizer) AuthenticateVerified(username, clientID string) (Principal, AuthResult) {
	id, res := a.p.AuthenticateVerified(username, clientID)
	if res != authz.AuthOK {
		return nil, AuthResult(res)
	}
	return id, AuthOK
}

// Rebind moves an identity to the new policy. A principal that did not come
// from a policy (the broker ran open before its first bundle) keeps its
// place only as an anonymous client the new policy admits; a client that had
// presented credentials must reconnect so they can be checked.
func (a policyAuthorizer) Rebind(old Principal, clientID string) (Principal, AuthResult) {
	if id, ok := old.(*authz.Identity); ok {
		nid, res := a.p.Rebind(id)
		if res != authz.AuthOK {
			return nil, AuthResult(res)
		}
		return nid, AuthOK
	}
	if ap, ok := old.(allowAll); ok && !ap.hadUsername && a.p.AllowAnonymous() {
		id, res := a.p.Authenticate("", false, nil, clientID)
		if res != authz.AuthOK {
			return nil, AuthResult(res)
		}
		return id, AuthOK
	}
	return nil, AuthNotAuthorized
}

func (a policyAuthorizer) AllowAnonymous() bool { return a.p.AllowAnonymous() }

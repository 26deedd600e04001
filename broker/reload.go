package broker

import (
	"github.com/fleetmq/fleetmq/broker/authz"
	"github.com/fleetmq/fleetmq/broker/packets"
)

// SetAuthorizer swaps the users and permissions in force. Connections whose
// principal is no longer valid under a are disconnected (v5: DISCONNECT
// 0x87 with a reason string) and their sessions end; subscriptions the new
// rules no longer allow are removed; everyone else keeps connection,
// subscriptions and queued messages.
func (s *Server) SetAuthorizer(a Authorizer) (revoked int) {
	s.auth.Store(&authBox{a})

	s.mu.Lock()
	states := make([]*clientState, 0, len(s.sessions))
	for _, st := range s.sessions {
		states = append(states, st)
	}
	s.mu.Unlock()

	for _, st := range states {
		if !st.rebind(a) {
			revoked++
		}
	}
	s.refreshUserLimits(states)
	return revoked
}

func (s *Server) authorizer() Authorizer { return s.auth.Load().a }

// rebind re-resolves the session's principal under a new Authorizer. It
// reports false when the session was revoked (connection closed, session
// ended). Subscriptions no longer allowed are removed.
func (st *clientState) rebind(a Authorizer) bool {
	box := st.principal.Load()
	if box == nil {
		return true
	}
	if box.restored {
		return true // checked under the new rules when its client returns
	}
	old := box.p
	np, res := a.Rebind(old, st.id)
	s := st.srv
	if res != authz.AuthOK {
		s.stats.Revoked.Add(1)
		s.mu.Lock()
		st.mu.Lock()
		c := st.client
		// The session ends with the connection: its owner lost the right
		// to it [DESIGN: hot reload]. So does its will, wherever it is:
		// the connection's (detach checks revoked), one waiting out its
		// delay (endLocked returns it, dropped here) and the stored one.
		if st.will != nil || st.journal.willStored || (c != nil && c.will != nil) {
			s.stats.WillsRevoked.Add(1)
		}
		st.expiry = 0
		st.revoked = true
		st.journal.forgetWill()
		if c == nil {
			st.endLocked()
		}
		st.mu.Unlock()
		s.mu.Unlock()
		if c != nil {
			reason := "credentials revoked"
			if res == authz.AuthNotAuthorized {
				reason = "not authorized any more"
			}
			s.log.Info("Disconnecting client after auth reload", "client", st.id, "reason", reason)
			c.kick(packets.NotAuthorized, reason)
		}
		return false
	}
	st.mu.Lock()
	if st.getPrincipal() != old {
		// A new connection took the session over meanwhile, with a
		// principal from the new rules already: keep that one.
		np = st.getPrincipal()
	} else {
		st.principal.Store(&principalBox{p: np})
	}
	st.pruneSubsLocked(np, "Subscription removed after auth reload")
	st.mu.Unlock()
	return true
}

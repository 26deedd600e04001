package broker

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"

	"github.com/fleetmq/fleetmq/broker/authz"
	"github.com/fleetmq/fleetmq/broker/outbox"
	"github.com/fleetmq/fleetmq/broker/packets"
	"github.com/fleetmq/fleetmq/broker/store"
)

// handleConnect authenticates the client, attaches it to its session
// (taking it over from an older connection if needed) and answers CONNACK.
func (c *client) handleConnect(flags byte, body []byte) error {
	s := c.srv
	var cp packets.Connect
	if err := cp.Decode(flags, body); err != nil {
		c.version = cp.Version
		if errors.Is(err, packets.ErrUnsupportedVersion) {
			// [MQTT-3.1.2-2] answer 0x01 (3.1.1) or 0x84 (v5), then close.
			code := packets.ConnRefusedProtocolVersion
			v := packets.V311
			if cp.Version == packets.V5 {
				code, v = packets.UnsupportedProtocolVersion, packets.V5
			}
			c.refuse(v, code)
			return protocolErr(code, "CONNECT: %v", err)
		}
		if cp.Version == packets.V5 {
			// v5 may answer a bad CONNECT with a CONNACK reason [MQTT-4.13.1-1].
			c.refuse(packets.V5, packets.Code(err))
		}
		return &errProtocol{code: packets.Code(err), err: err}
	}
	c.version = cp.Version
	v5 := cp.Version == packets.V5

	// Client identifier rules [MQTT-3.1.3-5..9].
	assigned := ""
	if cp.ClientID == "" {
		if cp.Version == packets.V31 || (!v5 && !cp.CleanStart) {
			c.refuse(cp.Version, codeFor(cp.Version, packets.ConnRefusedIdentifierRejected, packets.ClientIdentifierNotValid))
			return protocolErr(packets.ClientIdentifierNotValid, "CONNECT: empty client id not allowed here")
		}
		cp.ClientID = newClientID()
		if v5 {
			assigned = cp.ClientID
		}
	}
	if (cp.Version == packets.V31 && len(cp.ClientID) > 23) || len(cp.ClientID) > s.lim.MaxClientIDLength {
		c.refuse(cp.Version, codeFor(cp.Version, packets.ConnRefusedIdentifierRejected, packets.ClientIdentifierNotValid))
		return protocolErr(packets.ClientIdentifierNotValid, "CONNECT: client id of %d bytes is too long", len(cp.ClientID))
	}
	c.id = cp.ClientID
	if v5 && cp.Props.AuthMethod != "" {
		// No enhanced authentication method is configured [MQTT-4.12.0-1].
		c.refuse(cp.Version, packets.BadAuthenticationMethod)
		return protocolErr(packets.BadAuthenticationMethod, "CONNECT: unsupported authentication method %q", cp.Props.AuthMethod)
	}

	authorizer := s.authorizer()
	principal, res := c.authenticate(authorizer, &cp)
	if res != authz.AuthOK {
		code := codeFor(cp.Version, packets.ConnRefusedBadUsernamePass, packets.BadUserNameOrPassword)
		switch res {
		case authz.AuthNotAuthorized:
			code = codeFor(cp.Version, packets.ConnRefusedNotAuthorized, packets.NotAuthorized)
		case authz.AuthBusy: // counted by authenticate, as is AuthThrottled
			code = codeFor(cp.Version, packets.ConnRefusedServerUnavailable, packets.ServerBusy)
		case authz.AuthThrottled:
			code = codeFor(cp.Version, packets.ConnRefusedServerUnavailable, packets.ConnectionRateExceeded)
		}
		c.refuse(cp.Version, code)
		if res == authz.AuthBusy || res == authz.AuthThrottled {
			// Cheap and many under attack: the counters tell, not the log.
			s.log.Debug("Connection refused", "client", c.id, "remote", c.remote, "username", cp.Username, "code", byte(code))
			return errRefused
		}
		s.stats.AuthFailures.Add(1)
		s.log.Info("Connection refused", "client", c.id, "remote", c.remote, "username", cp.Username, "code", byte(code))
		return errRefused
	}
	if s.stats.ClientsConnected.Load() >= int64(s.lim.MaxConnections) && !s.connectedID(cp.ClientID) {
		c.refuse(cp.Version, codeFor(cp.Version, packets.ConnRefusedServerUnavailable, packets.QuotaExceeded))
		s.log.Warn("Connection refused: connection limit reached", "client", c.id, "remote", c.remote, "max", s.lim.MaxConnections)
		return errRefused
	}

	// Keepalive and the client's own limits.
	ka := cp.KeepAlive
	serverKA := false
	if v5 && s.lim.MaxKeepAlive > 0 && (ka == 0 || ka > s.lim.MaxKeepAlive) {
		ka, serverKA = s.lim.MaxKeepAlive, true
	}
	if ka > 0 {
		c.keepAlive = time.Duration(ka) * 1500 * time.Millisecond
	}
	c.will = cp.Will
	c.receiveMax = 65535
	c.problemInfo = true
	expiry := uint32(0)
	if v5 {
		if cp.Props.HasReceiveMaximum {
			c.receiveMax = cp.Props.ReceiveMaximum
		}
		c.maxPacketOut = cp.Props.MaximumPacketSize
		c.aliasMaxOut = cp.Props.TopicAliasMaximum
		if cp.Props.HasRequestProblemInfo {
			c.problemInfo = cp.Props.RequestProblemInfo == 1
		}
		expiry = cp.Props.SessionExpiry
	} else if !cp.CleanStart {
		expiry = ^uint32(0) // a 3.1.1 persistent session does not expire, up to our cap
	}
	c.receiveMax = min(c.receiveMax, s.lim.MaxInflight) // the outbound window, whatever the client announces
	cappedExpiry := min(expiry, s.lim.MaxSessionExpiry)

	ack := packets.Connack{ReasonCode: packets.Success}
	if v5 {
		ack.Props.ReceiveMaximum, ack.Props.HasReceiveMaximum = s.lim.MaxInflight, true
		ack.Props.MaximumPacketSize, ack.Props.HasMaximumPacketSize = s.lim.MaxPacketSize, true
		ack.Props.TopicAliasMaximum, ack.Props.HasTopicAliasMaximum = s.lim.TopicAliasMaximum, true
		ack.Props.AssignedClientID = assigned
		if cp.Props.RequestResponseInfo == 1 && s.opts.ResponseTopicPrefix != "" {
			ack.Props.ResponseInfo = s.opts.ResponseTopicPrefix + cp.ClientID + "/"
		}
		if serverKA {
			ack.Props.ServerKeepAlive, ack.Props.HasServerKeepAlive = ka, true
		}
		if cappedExpiry != expiry {
			ack.Props.SessionExpiry, ack.Props.HasSessionExpiry = cappedExpiry, true
		}
	}

	st, present, res := s.attach(c, cp.CleanStart, cappedExpiry, authorizer, principal, &ack)
	if st == nil {
		code := codeFor(cp.Version, packets.ConnRefusedServerUnavailable, packets.ServerUnavailable)
		switch res {
		case authz.AuthBadCredentials:
			code = codeFor(cp.Version, packets.ConnRefusedBadUsernamePass, packets.BadUserNameOrPassword)
		case authz.AuthNotAuthorized:
			code = codeFor(cp.Version, packets.ConnRefusedNotAuthorized, packets.NotAuthorized)
		case authz.AuthQuotaExceeded:
			code = codeFor(cp.Version, packets.ConnRefusedServerUnavailable, packets.QuotaExceeded)
		}
		c.refuse(cp.Version, code)
		return errRefused
	}
	s.stats.ConnectsTotal.Add(1)
	s.log.Debug("Client connected", "client", c.id, "remote", c.remote, "version", byte(c.version), "sessionPresent", present)
	return nil
}

// attach binds c to its session: it takes the session over from a live
// connection, ends it when clean start asks so, or starts a new one. A
// session another principal owns is not attached to: the CONNECT is
// refused, or the session discarded first (Options.SessionTakeover). The
// CONNACK and anything the session owes are written before another
// goroutine can deliver to c. It returns nil when the server is closing.
func (s *Server) attach(c *client, cleanStart bool, expiry uint32, a Authorizer, p Principal, ack *packets.Connack) (*clientState, bool, authz.AuthResult) {
	now := time.Now()
	discarded := false
	for {
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			return nil, false, authz.AuthOK
		}
		if cur := s.authorizer(); cur != a {
			// A reload swapped the rules while this CONNECT was being
			// checked; SetAuthorizer's pass over sessions cannot see this
			// one yet, so it is re-checked here, under s.mu.
			np, res := cur.Rebind(p, c.id)
			if res != authz.AuthOK {
				s.mu.Unlock()
				s.stats.AuthFailures.Add(1)
				return nil, false, res
			}
			a, p = cur, np
		}
		st := s.sessions[c.id]
		if st != nil {
			st.mu.Lock()
			old := st.client
			foreign := st.owner.Known && st.owner.Username != p.Username()
			st.mu.Unlock()
			if foreign {
				// The session is another user's: not to be resumed, nor
				// its owner kicked, by whoever knows the client id.
				if s.opts.SessionTakeover != SessionTakeoverDiscard {
					s.mu.Unlock()
					s.stats.TakeoverRefused.Add(1)
					s.log.Info("Connection refused: the session belongs to another user", "client", c.id, "remote", c.remote, "username", p.Username())
					return nil, false, authz.AuthNotAuthorized
				}
				if !discarded {
					discarded = true
					s.stats.TakeoverDiscarded.Add(1)
					s.log.Info("Session of another user discarded for a new connection", "client", c.id, "remote", c.remote, "username", p.Username())
				}
				cleanStart = true
			}
			if old != nil {
				// Take over [MQTT-3.1.4-3]: end the old connection, wait until
				// it has let go of the session, then look again.
				s.mu.Unlock()
				old.kick(packets.SessionTakenOver, "another connection with this client id")
				<-old.done
				continue
			}
		}
		if !s.admitUserLocked(c, p) {
			// The user's maxConnections: counted after any takeover above
			// let go, so only a connection that adds one is refused.
			s.mu.Unlock()
			s.stats.ConnectionQuotaExceeded.Add(1)
			s.log.Info("Connection refused: the user's connection limit is reached", "client", c.id, "remote", c.remote, "username", p.Username())
			return nil, false, authz.AuthQuotaExceeded
		}
		var will *outbox.Message
		if st != nil && cleanStart {
			// A clean start ends the old session; its pending will goes now.
			st.mu.Lock()
			will = st.endLocked()
			st.mu.Unlock()
			st = nil
		}
		present := st != nil
		if st == nil {
			st = newClientState(s, c.id)
			s.sessions[c.id] = st
		}
		st.mu.Lock()
		st.owner = store.Owner{Username: p.Username(), Known: true} // a new session, or a claim of an unowned one
		st.client = c
		st.connected.Store(true)
		st.principal.Store(&principalBox{p: p})
		st.expiry, st.expiryAtConnect = expiry, expiry
		st.persistAttachLocked(p)
		if st.expiryTimer != nil {
			st.expiryTimer.Stop()
			st.expiryTimer = nil
		}
		if st.will != nil {
			// Reconnected before the will delay passed [MQTT-3.1.3-9].
			st.will.stop()
			st.will = nil
		}
		c.st = st
		ack.SessionPresent = present && c.version != packets.V31
		c.writePacket(func(b []byte) []byte { return ack.Append(b, c.version) })
		if present {
			st.resendLocked(now)
		}
		st.fillLocked(now)
		st.mu.Unlock()
		s.mu.Unlock()
		s.stats.ClientsConnected.Add(1)
		if will != nil {
			s.publishWill(st, will, now)
		}
		return st, present, authz.AuthOK
	}
}

// connectedID reports whether a live connection holds client id: a new
// connection for it takes that one over and adds none, so the connection
// limit must not refuse it (a device whose old connection is half-open
// would otherwise be locked out exactly when the broker is full).
func (s *Server) connectedID(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.sessions[id]
	return st != nil && st.connected.Load()
}

// refuse answers a CONNECT that is not accepted. The connection closes
// after it [MQTT-3.2.2-5].
func (c *client) refuse(v packets.Version, code packets.ReasonCode) {
	ack := packets.Connack{ReasonCode: code}
	c.writePacket(func(b []byte) []byte { return ack.Append(b, v) })
}

// codeFor picks the 3.1.1 return code or the v5 reason code.
func codeFor(v packets.Version, v3, v5 packets.ReasonCode) packets.ReasonCode {
	if v == packets.V5 {
		return v5
	}
	return v3
}

func newClientID() string {
	var b [12]byte
	rand.Read(b[:])
	return "fleetmq-" + hex.EncodeToString(b[:])
}

package authz

import (
	"fmt"
	"slices"
	"strings"
)

// AuthResult is the outcome of Authenticate or Rebind, here and in the
// broker's Authorizer interface: one type on both sides.
type AuthResult int

// Authentication outcomes and the CONNACK codes they become.
const (
	// AuthOK admits the client.
	AuthOK AuthResult = iota
	// AuthBadCredentials: unknown user or wrong (or changed) password.
	// MQTT 3.1.1 return code 4, MQTT 5 reason code 0x86.
	AuthBadCredentials
	// AuthNotAuthorized: disabled user, or no username while anonymous
	// access is off. MQTT 3.1.1 return code 5, MQTT 5 reason code 0x87.
	AuthNotAuthorized
	// AuthBusy: the password could not be checked because every slot for
	// hashing stayed taken (guard.go). MQTT 3.1.1 return code 3 (server
	// unavailable), MQTT 5 reason code 0x89 (server busy).
	AuthBusy
	// AuthThrottled: refused without checking, because this username or
	// source failed too often lately; the broker decides it, a Policy
	// never returns it. MQTT 3.1.1 return code 3, MQTT 5 reason code 0x9F
	// (connection rate exceeded).
	AuthThrottled
	// AuthQuotaExceeded: refused because the user has as many
	// connections as its limits allow; the broker decides it, a Policy
	// never returns it. MQTT 3.1.1 return code 3 (server unavailable),
	// MQTT 5 reason code 0x97 (quota exceeded).
	AuthQuotaExceeded
)

func (r AuthResult) String() string {
	switch r {
	case AuthOK:
		return "ok"
	case AuthBadCredentials:
		return "bad credentials"
	case AuthNotAuthorized:
		return "not authorized"
	case AuthBusy:
		return "busy"
	case AuthThrottled:
		return "throttled"
	case AuthQuotaExceeded:
		return "quota exceeded"
	}
	return fmt.Sprintf("AuthResult(%d)", int(r))
}

// V3ReturnCode is the MQTT 3.1.1 CONNACK return code for r.
func (r AuthResult) V3ReturnCode() byte {
	switch r {
	case AuthOK:
		return 0
	case AuthBadCredentials:
		return 4
	case AuthBusy, AuthThrottled, AuthQuotaExceeded:
		return 3
	}
	return 5
}

// V5ReasonCode is the MQTT 5 CONNACK (or DISCONNECT) reason code for r.
func (r AuthResult) V5ReasonCode() byte {
	switch r {
	case AuthOK:
		return 0x00
	case AuthBadCredentials:
		return 0x86
	case AuthBusy:
		return 0x89
	case AuthThrottled:
		return 0x9F
	case AuthQuotaExceeded:
		return 0x97
	}
	return 0x87
}

// Policy is a compiled bundle. It is immutable after Compile, except for its
// verification cache, and safe for concurrent use; the broker keeps the
// current one in an atomic.Pointer.
type Policy struct {
	revision  int64
	hash      string
	allowAnon bool

	users       map[string]*compiledUser
	groups      map[string]*node // rules with group subjects, per group
	clientExact map[string]*node // rules with exact client-id subjects
	clientGlobs []globTrie       // rules with glob client-id subjects

	cache verifyCache
}

type compiledUser struct {
	name     string
	hashStr  string // PasswordHash as in the bundle, compared by Rebind
	hash     pbkdf2Hash
	groups   []string // deduplicated
	disabled bool
	limits   *UserLimits // nil: none
	trie     *node       // rules naming this user; nil if none
}

type globTrie struct {
	pattern string
	trie    *node
}

// Compile validates b and builds its Policy. The bundle is not retained.
func Compile(b *Bundle) (*Policy, error) {
	hashes := make([]pbkdf2Hash, len(b.Users))
	v := &validator{}
	b.validate(v, hashes)
	if err := v.err(); err != nil {
		return nil, fmt.Errorf("invalid auth bundle: %w", err)
	}
	p := &Policy{
		revision:    b.Revision,
		hash:        b.Hash(),
		allowAnon:   b.AllowAnonymous,
		users:       make(map[string]*compiledUser, len(b.Users)),
		groups:      make(map[string]*node),
		clientExact: make(map[string]*node),
	}
	for i := range b.Users {
		u := &b.Users[i]
		cu := &compiledUser{
			name:     u.Username,
			hashStr:  u.PasswordHash,
			hash:     hashes[i],
			disabled: u.Disabled,
			limits:   cloneLimits(u.Limits),
		}
		for _, g := range u.Groups {
			if !contains(cu.groups, g) {
				cu.groups = append(cu.groups, g)
			}
		}
		p.users[u.Username] = cu
	}
	globs := make(map[string]*node)
	userTries := make(map[string]*node)
	var tries []*node // this rule's tries, reused
	templates := make(map[string]*template)
	for i := range b.Rules {
		r := &b.Rules[i]
		f := ruleFlags(r)
		tries = tries[:0]
		for _, name := range r.Subjects.Users {
			tries = appendTrie(tries, userTries, name)
		}
		for _, g := range r.Subjects.Groups {
			tries = appendTrie(tries, p.groups, g)
		}
		for _, c := range r.Subjects.ClientIDs {
			if strings.IndexByte(c, '*') >= 0 {
				tries = appendTrie(tries, globs, c)
			} else {
				tries = appendTrie(tries, p.clientExact, c)
			}
		}
		for _, t := range r.Topics {
			for _, n := range tries {
				n.insert(t, f, templates)
			}
		}
	}
	// Rules may name users that are not (yet) in the bundle; they simply
	// never apply.
	for name, t := range userTries {
		if u := p.users[name]; u != nil {
			u.trie = t
		}
	}
	for pat, t := range globs {
		p.clientGlobs = append(p.clientGlobs, globTrie{pattern: pat, trie: t})
	}
	slices.SortFunc(p.clientGlobs, func(a, b globTrie) int { return strings.Compare(a.pattern, b.pattern) })
	p.cache.init(len(b.Users))
	return p, nil
}

// appendTrie appends the trie of key in m (created if missing) to tries,
// once.
func appendTrie(tries []*node, m map[string]*node, key string) []*node {
	n := m[key]
	if n == nil {
		n = &node{}
		m[key] = n
	}
	for _, t := range tries {
		if t == n {
			return tries
		}
	}
	return append(tries, n)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Revision is the bundle revision the policy was compiled from.
func (p *Policy) Revision() int64 { return p.revision }

// Hash is the content hash of the bundle the policy was compiled from (see
// Bundle.Hash).
func (p *Policy) Hash() string { return p.hash }

// AllowAnonymous reports whether clients without a username are admitted.
func (p *Policy) AllowAnonymous() bool { return p.allowAnon }

// Authenticate decides a CONNECT. hasUsername distinguishes an absent
// username from an empty one; a password without a username is ignored.
// On AuthOK the Identity carries everything later checks need.
//
//   - no username: AuthOK as an anonymous identity when anonymous access is
//     allowed (only client-id rules apply to it), else AuthNotAuthorized;
//   - unknown username or wrong password: AuthBadCredentials;
//   - right password of a disabled user: AuthNotAuthorized;
//   - no slot to run PBKDF2 in within hashWait (guard.go): AuthBusy.
func (p *Policy) Authenticate(username string, hasUsername bool, password []byte, clientID string) (*Identity, AuthResult) {
	if !hasUsername {
		if !p.allowAnon {
			return nil, AuthNotAuthorized
		}
		return p.bind(nil, clientID), AuthOK
	}
	u := p.users[username]
	if u == nil {
		if !hashSlots.acquire() {
			return nil, AuthBusy
		}
		h := dummyHash()
		h.verify(password)
		hashSlots.release()
		return nil, AuthBadCredentials
	}
	switch p.cache.verify(u, password) {
	case verifyBusy:
		return nil, AuthBusy
	case verifyWrong:
		return nil, AuthBadCredentials
	}
	if u.disabled {
		return nil, AuthNotAuthorized
	}
	return p.bind(u, clientID), AuthOK
}

// AuthenticateCached decides a CONNECT as Authenticate does when that
// needs no PBKDF2: no username, or a password that succeeded before for
// this user (a cache hit). ok is false when only Authenticate can decide
// (unknown user, password not verified yet). It never waits, so the broker
// lets it through while it throttles guessing.
func (p *Policy) AuthenticateCached(username string, hasUsername bool, password []byte, clientID string) (id *Identity, res AuthResult, ok bool) {
	if !hasUsername {
		id, res = p.Authenticate(username, false, password, clientID)
		return id, res, true
	}
	u := p.users[username]
	if u == nil || !p.cache.hit(u, password) {
		return nil, AuthBadCredentials, false
	}
	if u.disabled {
		return nil, AuthNotAuthorized, true
	}
	return p.bind(u, clientID), AuthOK, true
}

// AuthenticateVerified decides a CONNECT whose username the transport has
// already verified: the subject CN of a client certificate checked against
// the listener's CA. The certificate is the credential, so no password is
// checked, but the user must be in the bundle:
//
//   - unknown username or disabled user: AuthNotAuthorized (the certificate
//     was good; this principal is not admitted);
//   - otherwise AuthOK, bound like a password-authenticated user.
func (p *Policy) AuthenticateVerified(username, clientID string) (*Identity, AuthResult) {
	u := p.users[username]
	if u == nil || u.disabled {
		return nil, AuthNotAuthorized
	}
	id := p.bind(u, clientID)
	id.certificate = true
	return id, AuthOK
}

// Rebind re-resolves an identity granted by an earlier policy against p,
// after a hot reload. It needs no password: the identity remembers the
// password hash it was verified against.
//
//   - certificate identity (AuthenticateVerified): user gone or disabled:
//     AuthNotAuthorized; its password hash does not matter;
//   - user gone, or its passwordHash changed: AuthBadCredentials;
//   - user disabled: AuthNotAuthorized;
//   - anonymous identity while p refuses anonymous clients: AuthNotAuthorized;
//   - otherwise AuthOK, with a new Identity bound to p's rules (groups and
//     client-id rules are resolved again).
func (p *Policy) Rebind(old *Identity) (*Identity, AuthResult) {
	if old == nil {
		return nil, AuthNotAuthorized
	}
	if old.anonymous {
		if !p.allowAnon {
			return nil, AuthNotAuthorized
		}
		return p.bind(nil, old.clientID), AuthOK
	}
	u := p.users[old.username]
	if old.certificate {
		return p.AuthenticateVerified(old.username, old.clientID)
	}
	switch {
	case u == nil, u.hashStr != old.passwordHash:
		return nil, AuthBadCredentials
	case u.disabled:
		return nil, AuthNotAuthorized
	}
	return p.bind(u, old.clientID), AuthOK
}

// bind builds the identity of user u (nil: anonymous) with clientID.
func (p *Policy) bind(u *compiledUser, clientID string) *Identity {
	id := &Identity{policy: p, clientID: clientID, anonymous: u == nil}
	if u != nil {
		id.username = u.name
		id.passwordHash = u.hashStr
		id.limits = u.limits
		if u.trie != nil {
			id.tries = append(id.tries, u.trie)
		}
		for _, g := range u.groups {
			if t := p.groups[g]; t != nil {
				id.tries = append(id.tries, t)
			}
		}
	}
	if t := p.clientExact[clientID]; t != nil && clientID != "" {
		id.tries = append(id.tries, t)
	}
	for i := range p.clientGlobs {
		if g := &p.clientGlobs[i]; globMatch(g.pattern, clientID) {
			id.tries = append(id.tries, g.trie)
		}
	}
	return id
}

// globMatch reports whether s matches pattern, where '*' matches any run of
// bytes, including none, and every other byte matches itself.
func globMatch(pattern, s string) bool {
	// Greedy with one backtrack point: linear for patterns with a single
	// '*', O(len(pattern)·len(s)) at worst.
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case p < len(pattern) && pattern[p] == s[i]:
			p++
			i++
		case star >= 0:
			mark++
			p, i = star+1, mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

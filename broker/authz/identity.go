package authz

import "unsafe"

// Identity is an authenticated connection as the policy sees it: who it is
// and the tries of the rules that can apply to it (its user's, its groups',
// and those of the client-id subjects its id matches), resolved once at
// CONNECT so that each check costs O(topic levels). It is immutable and
// safe for concurrent use; checks neither lock nor allocate.
type Identity struct {
	policy       *Policy
	username     string
	clientID     string
	anonymous    bool
	passwordHash string // the hash the password was verified against
	certificate  bool   // admitted by AuthenticateVerified: no password
	limits       *UserLimits
	tries        []*node
}

// Username is the authenticated username, "" for an anonymous client.
func (id *Identity) Username() string { return id.username }

// ClientID is the client id the identity was bound with.
func (id *Identity) ClientID() string { return id.clientID }

// Anonymous reports whether the client connected without a username.
func (id *Identity) Anonymous() bool { return id.anonymous }

// Policy is the policy the identity was granted by.
func (id *Identity) Policy() *Policy { return id.policy }

// CanPublish reports whether the client may publish to topic, a topic name
// (wildcards make it false).
func (id *Identity) CanPublish(topic []byte) bool {
	s := bytesString(topic)
	if !validTopicName(s) {
		return false
	}
	return id.decide(s, pubAllow, pubDeny)
}

// CanSubscribe reports whether the client may subscribe to filter (without
// any $share/<group>/ prefix): some allow-subscribe pattern covers the
// whole filter and no deny-subscribe pattern does. Denies that cover only
// part of the filter are enforced per message by CanRead.
func (id *Identity) CanSubscribe(filter string) bool {
	if !validFilter(filter) {
		return false
	}
	return id.decide(filter, subAllow, subDeny)
}

// CanRead reports whether a message published to topic may be delivered to
// the client: some allow-subscribe pattern matches it and no deny-subscribe
// pattern does. The broker calls it for every delivery, retained messages
// included.
func (id *Identity) CanRead(topic []byte) bool {
	s := bytesString(topic)
	if !validTopicName(s) {
		return false
	}
	return id.decide(s, subAllow, subDeny)
}

// decide walks every trie of the identity: allowed when some allow pattern
// covers s and no deny pattern does.
func (id *Identity) decide(s string, allow, deny flags) bool {
	var acc flags
	for _, t := range id.tries {
		t.walk(s, true, true, id, &acc, deny)
		if acc&deny != 0 {
			return false
		}
	}
	return acc&allow != 0
}

// bytesString views b as a string without copying. The result must not
// outlive the call that received b; the checks only compare and look it up.
func bytesString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

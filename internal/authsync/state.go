package authsync

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// keySize is the length of State.Key, in bytes.
const keySize = 32

// State is the operator's bookkeeping for one Broker, stored in the auth
// Secret under a key that is NOT mounted into broker pods.
type State struct {
	// Revision of the bundle last compiled.
	Revision int64 `json:"revision"`
	// Hash is authz.Bundle.Hash() of the bundle at Revision.
	Hash string `json:"hash"`
	// Key is the random HMAC key for password digests (generated when
	// absent).
	Key []byte `json:"key"`
	// Passwords by username: which password each hash was made for.
	Passwords map[string]PasswordEntry `json:"passwords"`
	// Objects by "User/<name>" or "ACL/<name>": included objects only.
	Objects map[string]ObjectEntry `json:"objects"`
}

// PasswordEntry remembers the hash made for one user's password.
type PasswordEntry struct {
	// Digest is base64 HMAC-SHA256(Key, username \x00 password).
	Digest string `json:"digest"`
	// Hash is the password hash in the bundle.
	Hash string `json:"hash"`
}

// ObjectEntry is what one User or ACL contributes to the bundle.
type ObjectEntry struct {
	// Digest of the object's contribution.
	Digest string `json:"digest"`
	// Revision is the first revision that contained exactly this
	// contribution.
	Revision int64 `json:"revision"`
}

// ParseState decodes a State written by Marshal.
func ParseState(data []byte) (*State, error) {
	if len(data) == 0 {
		return nil, errors.New("parse auth state: empty")
	}
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("parse auth state: %w", err)
	}
	if s.Revision < 0 {
		return nil, fmt.Errorf("parse auth state: revision %d must not be negative", s.Revision)
	}
	if s.Passwords == nil {
		s.Passwords = map[string]PasswordEntry{}
	}
	if s.Objects == nil {
		s.Objects = map[string]ObjectEntry{}
	}
	return &s, nil
}

// Marshal encodes s as JSON (map keys sorted, so equal states give equal
// bytes).
func (s *State) Marshal() ([]byte, error) {
	data, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("marshal auth state: %w", err)
	}
	return data, nil
}

// Rebase makes the next Compile produce a revision above brokerRevision,
// for when a broker holds a revision the operator never compiled (its
// State was lost or restored from an old copy): a push answered 409, or a
// broker reports the desired revision, or a higher one, with other
// content. It also
// forgets Hash, so the next Compile counts as a change, and Objects, so
// every object's IncludedRevision becomes that new revision: what the
// broker holds at brokerRevision is not known to contain them. Key and
// Passwords are kept: no password is re-hashed.
func (s *State) Rebase(brokerRevision int64) {
	s.Revision = max(s.Revision, brokerRevision)
	s.Hash = ""
	s.Objects = map[string]ObjectEntry{}
}

// newKey returns a fresh random HMAC key.
func newKey() []byte {
	k := make([]byte, keySize)
	rand.Read(k) // never fails (crypto/rand, Go 1.24+)
	return k
}

// passwordDigest is base64 HMAC-SHA256(key, username \x00 password).
func passwordDigest(key []byte, username string, password []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(username))
	m.Write([]byte{0})
	m.Write(password)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

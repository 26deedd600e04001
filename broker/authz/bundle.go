package authz

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// APIVersion is the only bundle apiVersion this package understands.
const APIVersion = "authz.fleetmq.io/v1"

// maxValidateErrors bounds how many problems Validate reports one by one.
const maxValidateErrors = 100

// Bundle is everything a broker needs to authenticate and authorize
// clients: users with password hashes and ACL rules. The operator writes it;
// the broker compiles it into a Policy.
type Bundle struct {
	// APIVersion must be APIVersion.
	APIVersion string `json:"apiVersion"`
	// Revision increases with every change the operator makes.
	Revision int64 `json:"revision"`
	// AllowAnonymous admits clients that send no username.
	AllowAnonymous bool `json:"allowAnonymous"`
	// Users are the principals that can log in.
	Users []User `json:"users"`
	// Rules are the ACL rules, in no particular order.
	Rules []Rule `json:"rules"`
}

// User is one MQTT principal.
type User struct {
	// Username is unique within a bundle.
	Username string `json:"username"`
	// PasswordHash is a $7$ PBKDF2-SHA512 hash (see HashPassword).
	PasswordHash string `json:"passwordHash"`
	// Groups name the groups the user belongs to.
	Groups []string `json:"groups,omitempty"`
	// Disabled users are refused at CONNECT (not authorized).
	Disabled bool `json:"disabled,omitempty"`
	// Limits bound what the user may use of the broker (limits.go); nil:
	// the broker-wide limits only.
	Limits *UserLimits `json:"limits,omitempty"`
}

// Rule grants or denies actions on topics to subjects.
type Rule struct {
	// Subjects the rule applies to; any one matching is enough.
	Subjects Subjects `json:"subjects"`
	// Topics are MQTT topic filters, with %u and %c expanded per client.
	Topics []string `json:"topics"`
	// Actions the rule covers.
	Actions []Action `json:"actions"`
	// Effect of the rule when it matches.
	Effect Effect `json:"effect"`
}

// Subjects select the clients a rule applies to.
type Subjects struct {
	// Users are exact usernames.
	Users []string `json:"users,omitempty"`
	// Groups are group names.
	Groups []string `json:"groups,omitempty"`
	// ClientIDs are exact client ids, or glob patterns with '*'.
	ClientIDs []string `json:"clientIDs,omitempty"`
}

// Action is what a rule permits or forbids.
type Action string

// Actions.
const (
	ActionPublish   Action = "publish"
	ActionSubscribe Action = "subscribe"
)

// Effect is the outcome of a matching rule.
type Effect string

// Effects.
const (
	EffectAllow Effect = "allow"
	EffectDeny  Effect = "deny"
)

// Parse decodes a bundle strictly. It does not validate the contents
// (Compile does); limiting the input size is the caller's business.
//
// It accepts what encoding/json with unknown fields disallowed accepts,
// except that it is stricter in three ways:
//
//   - Field names are case-sensitive: "Revision" is an unknown field, not
//     revision (encoding/json folds case).
//   - A field given twice in one object is an error (encoding/json keeps
//     the last value).
//   - The document must be an object; "null" is not an empty bundle.
//
// As with encoding/json, null leaves a string, boolean, number or object at
// its zero value and makes a list nil, while [] makes an empty, non-nil
// list; revision is an integer without fraction or exponent ("1.0" and
// "1e3" are errors); string escapes, \uXXXX surrogate pairs included, are
// decoded, and invalid UTF-8 and unpaired surrogates become U+FFFD; and
// anything but whitespace after the object is an error.
//
// Errors wrap a *ParseError that gives the byte offset, line and JSON path
// of the problem, e.g.
//
//	parse auth bundle: users[3]: unknown field "passwordHas" (byte offset 812, line 40)
func Parse(data []byte) (*Bundle, error) {
	b, err := parseBundle(data)
	if err != nil {
		return nil, fmt.Errorf("parse auth bundle: %w", err)
	}
	return b, nil
}

// Validate reports every problem of the bundle, joined with errors.Join,
// each naming the offending entry, e.g.
//
//	users[3] "bob": duplicate username
//	rules[2].topics[0] "a/#/b": '#' must be the last level
//
// After maxValidateErrors problems it stops listing and says how many more
// there were.
func (b *Bundle) Validate() error {
	v := &validator{}
	b.validate(v, nil)
	return v.err()
}

// validate checks b, storing parsed password hashes into hashes when it is
// not nil (Compile uses that to parse each hash once).
func (b *Bundle) validate(v *validator, hashes []pbkdf2Hash) {
	if b.APIVersion != APIVersion {
		v.addf("apiVersion %q: want %q", b.APIVersion, APIVersion)
	}
	if b.Revision < 0 {
		v.addf("revision %d: must not be negative", b.Revision)
	}
	seen := make(map[string]int, len(b.Users))
	for i, u := range b.Users {
		if msg := checkName(u.Username); msg != "" {
			v.addf("users[%d] %q: username %s", i, u.Username, msg)
		}
		if j, dup := seen[u.Username]; dup {
			v.addf("users[%d] %q: duplicate username (also users[%d])", i, u.Username, j)
		} else {
			seen[u.Username] = i
		}
		h, err := parsePasswordHash(u.PasswordHash)
		if err != nil {
			v.addf("users[%d] %q: passwordHash: %v", i, u.Username, err)
		} else if hashes != nil {
			hashes[i] = h
		}
		for k, g := range u.Groups {
			if msg := checkName(g); msg != "" {
				v.addf("users[%d] %q: groups[%d] %q: %s", i, u.Username, k, g, msg)
			}
		}
		validateLimits(v, i, &u)
	}
	for i := range b.Rules {
		validateRule(v, i, &b.Rules[i])
	}
}

func validateRule(v *validator, i int, r *Rule) {
	s := &r.Subjects
	if len(s.Users) == 0 && len(s.Groups) == 0 && len(s.ClientIDs) == 0 {
		v.addf("rules[%d]: no subjects (need users, groups or clientIDs)", i)
	}
	for k, n := range s.Users {
		if msg := checkName(n); msg != "" {
			v.addf("rules[%d].subjects.users[%d] %q: %s", i, k, n, msg)
		}
	}
	for k, n := range s.Groups {
		if msg := checkName(n); msg != "" {
			v.addf("rules[%d].subjects.groups[%d] %q: %s", i, k, n, msg)
		}
	}
	for k, n := range s.ClientIDs {
		if msg := checkName(n); msg != "" {
			v.addf("rules[%d].subjects.clientIDs[%d] %q: %s", i, k, n, msg)
		}
	}
	if len(r.Topics) == 0 {
		v.addf("rules[%d]: no topics", i)
	}
	for k, t := range r.Topics {
		if msg := checkPattern(t); msg != "" {
			v.addf("rules[%d].topics[%d] %q: %s", i, k, t, msg)
		}
	}
	if len(r.Actions) == 0 {
		v.addf("rules[%d]: no actions", i)
	}
	for k, a := range r.Actions {
		if a != ActionPublish && a != ActionSubscribe {
			v.addf("rules[%d].actions[%d] %q: unknown action (want %q or %q)", i, k, a, ActionPublish, ActionSubscribe)
		}
	}
	if r.Effect != EffectAllow && r.Effect != EffectDeny {
		v.addf("rules[%d].effect %q: unknown effect (want %q or %q)", i, r.Effect, EffectAllow, EffectDeny)
	}
}

// checkName returns why s is not a usable name (username, group, client
// id pattern), or "".
func checkName(s string) string {
	switch {
	case s == "":
		return "must not be empty"
	case !utf8.ValidString(s):
		return "must be valid UTF-8"
	case strings.IndexByte(s, 0) >= 0:
		return "must not contain NUL"
	case len(s) > 65535:
		return "longer than 65535 bytes"
	}
	return ""
}

// validator collects problems.
type validator struct {
	errs  []error
	extra int
}

func (v *validator) addf(format string, args ...any) {
	if len(v.errs) >= maxValidateErrors {
		v.extra++
		return
	}
	v.errs = append(v.errs, fmt.Errorf(format, args...))
}

func (v *validator) err() error {
	if v.extra > 0 {
		v.errs = append(v.errs, fmt.Errorf("... and %d more problems", v.extra))
	}
	return errors.Join(v.errs...)
}

// Hash returns "sha256:<hex>" of a canonical encoding of the bundle's
// contents. It does not depend on the order of users, of rules, or of the
// lists inside them, nor on the revision, so the operator can tell whether
// two bundles say the same thing. Duplicates are not removed: ["a","a"]
// and ["a"] hash differently.
func (b *Bundle) Hash() string {
	// Every entry is encoded into one arena; entries are then sorted by
	// their encodings and hashed in that order.
	e := canonEncoder{buf: make([]byte, 0, 64*(len(b.Users)+len(b.Rules)))}
	users := make([][2]int, len(b.Users))
	for i, u := range b.Users {
		start := len(e.buf)
		e.str(u.Username)
		e.str(u.PasswordHash)
		e.strs(u.Groups)
		// Bit 1 of the disabled byte says limits follow, so a user
		// without limits encodes as before they existed.
		flags := byte(0)
		if u.Disabled {
			flags = 1
		}
		if u.Limits != nil {
			flags |= 2
		}
		e.buf = append(e.buf, flags)
		e.limits(u.Limits)
		users[i] = [2]int{start, len(e.buf)}
	}
	rules := make([][2]int, len(b.Rules))
	for i, r := range b.Rules {
		start := len(e.buf)
		e.strs(r.Subjects.Users)
		e.strs(r.Subjects.Groups)
		e.strs(r.Subjects.ClientIDs)
		e.strs(r.Topics)
		e.scratch = e.scratch[:0]
		for _, a := range r.Actions {
			e.scratch = append(e.scratch, string(a))
		}
		e.strs(e.scratch)
		e.str(string(r.Effect))
		rules[i] = [2]int{start, len(e.buf)}
	}
	arena := e.buf
	byEncoding := func(a, b [2]int) int { return bytes.Compare(arena[a[0]:a[1]], arena[b[0]:b[1]]) }
	slices.SortFunc(users, byEncoding)
	slices.SortFunc(rules, byEncoding)

	h := sha256.New()
	var head canonEncoder
	head.str("fleetmq-authz-bundle-hash-v1")
	head.str(b.APIVersion)
	head.bool(b.AllowAnonymous)
	head.uint(uint64(len(users)))
	h.Write(head.buf)
	for _, u := range users {
		h.Write(arena[u[0]:u[1]])
	}
	head.buf = binary.AppendUvarint(head.buf[:0], uint64(len(rules)))
	h.Write(head.buf)
	for _, r := range rules {
		h.Write(arena[r[0]:r[1]])
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// canonEncoder writes an unambiguous, length-prefixed encoding.
type canonEncoder struct {
	buf     []byte
	scratch []string // reused by strs and callers
	sorted  []string // reused by strs
}

func (e *canonEncoder) uint(n uint64) { e.buf = binary.AppendUvarint(e.buf, n) }

func (e *canonEncoder) str(s string) {
	e.uint(uint64(len(s)))
	e.buf = append(e.buf, s...)
}

func (e *canonEncoder) bool(v bool) {
	if v {
		e.buf = append(e.buf, 1)
	} else {
		e.buf = append(e.buf, 0)
	}
}

// strs writes list in sorted order, without modifying it.
func (e *canonEncoder) strs(list []string) {
	sorted := list
	if len(list) > 1 && !slices.IsSorted(list) {
		e.sorted = append(e.sorted[:0], list...)
		slices.Sort(e.sorted)
		sorted = e.sorted
	}
	e.uint(uint64(len(sorted)))
	for _, s := range sorted {
		e.str(s)
	}
}

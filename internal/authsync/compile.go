package authsync

import (
	"bytes"
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"

	"github.com/fleetmq/fleetmq/api/v1alpha1"
	"github.com/fleetmq/fleetmq/broker/authz"
)

// Username is the username a User presents: spec.username, else its name.
func Username(u *v1alpha1.User) string { return cmp.Or(u.Spec.Username, u.Name) }

// PasswordSecret is the Secret, in the User's namespace, and the key in it
// that hold a User's password: spec.passwordSecretRef (key
// v1alpha1.CredentialsPasswordKey when unset, as the CRD defaults it), else
// the credentials Secret the operator generates.
func PasswordSecret(u *v1alpha1.User) (name, key string) {
	if ref := u.Spec.PasswordSecretRef; ref != nil {
		return ref.Name, cmp.Or(ref.Key, v1alpha1.CredentialsPasswordKey)
	}
	return v1alpha1.GeneratedSecretName(u), v1alpha1.CredentialsPasswordKey
}

// maxMessageLen bounds ObjectStatus.Message (it ends up in a condition).
const maxMessageLen = 1024

// Input is everything Compile needs for one Broker.
type Input struct {
	Broker *v1alpha1.Broker
	// Users whose spec.brokerRef.name is Broker's name, in its namespace.
	Users []v1alpha1.User
	// ACLs whose spec.brokerRef.name is Broker's name, in its namespace.
	ACLs []v1alpha1.ACL
	// Secrets by name (referenced or generated), in Broker's namespace.
	Secrets map[string]*corev1.Secret
	// Previous is the State of the last Compile; nil the first time.
	Previous *State
	// HashPassword hashes a new or changed password: authz.HashPassword
	// with the operator's iteration count. Nil uses
	// authz.DefaultIterations.
	HashPassword func(password []byte) (string, error)
}

// ObjectStatus is the outcome of Compile for one User or ACL.
type ObjectStatus struct {
	// Included: part of the bundle.
	Included bool
	// Reason is v1alpha1.ReasonPending when included, else
	// ReasonSecretNotFound, ReasonUsernameConflict or ReasonInvalid.
	Reason string
	// Message says, for a person, what is missing or wrong.
	Message string
	// Username in force (Users only).
	Username string
	// SecretName holding the password, referenced or generated (Users
	// only).
	SecretName string
	// IncludedRevision is the revision from which this object's current
	// contribution is in force; 0 when not included.
	IncludedRevision int64
	// RuleCount is the number of rules in the bundle (ACLs only).
	RuleCount int32
}

// Result is a compiled bundle and what became of each object.
type Result struct {
	// Bundle with Revision set.
	Bundle *authz.Bundle
	// BundleJSON is the canonical encoding of Bundle.
	BundleJSON []byte
	// State to store for the next Compile.
	State *State
	// Changed: the bundle's hash differs from Previous.Hash, so Revision is
	// Previous.Revision+1 (1 the first time). Unchanged: same revision, same
	// bytes.
	Changed bool
	// Users and ACLs by metadata.name; objects being deleted are absent.
	Users map[string]ObjectStatus
	ACLs  map[string]ObjectStatus
}

// contribution is one included object's share of the bundle.
type contribution struct {
	key    string // "User/<name>" or "ACL/<name>"
	digest string
}

// Compile builds the auth bundle of in.Broker. See the package
// documentation for the rules.
func Compile(in Input) (*Result, error) {
	if in.Broker == nil {
		return nil, errors.New("compile auth bundle: no Broker")
	}
	hashPassword := in.HashPassword
	if hashPassword == nil {
		hashPassword = func(p []byte) (string, error) { return authz.HashPassword(p, authz.DefaultIterations) }
	}
	prev := in.Previous
	if prev == nil {
		prev = &State{}
	}
	key := prev.Key
	if len(key) < keySize {
		key = newKey()
	} else {
		key = slices.Clone(key)
	}

	res := &Result{
		Users: map[string]ObjectStatus{},
		ACLs:  map[string]ObjectStatus{},
		State: &State{Key: key, Passwords: map[string]PasswordEntry{}, Objects: map[string]ObjectEntry{}},
	}
	var contribs []contribution
	users, userContribs, err := compileUsers(in, prev, res, hashPassword)
	if err != nil {
		return nil, fmt.Errorf("compile auth bundle of Broker %s/%s: %w", in.Broker.Namespace, in.Broker.Name, err)
	}
	contribs = append(contribs, userContribs...)
	rules, aclContribs := compileACLs(in, res)
	contribs = append(contribs, aclContribs...)

	b := &authz.Bundle{
		APIVersion:     authz.APIVersion,
		AllowAnonymous: in.Broker.Spec.AllowAnonymous,
		Users:          users,
		Rules:          rules,
	}
	hash := b.Hash()
	switch {
	case in.Previous == nil:
		b.Revision, res.Changed = 1, true
	case hash != prev.Hash:
		b.Revision, res.Changed = prev.Revision+1, true
	default:
		b.Revision = prev.Revision
	}
	if err := b.Validate(); err != nil {
		// Every object was validated on its own; only a bug gets here.
		return nil, fmt.Errorf("compile auth bundle of Broker %s/%s: bundle invalid: %w", in.Broker.Namespace, in.Broker.Name, err)
	}
	data, err := json.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("compile auth bundle of Broker %s/%s: marshal: %w", in.Broker.Namespace, in.Broker.Name, err)
	}
	res.Bundle, res.BundleJSON = b, data
	res.State.Revision, res.State.Hash = b.Revision, hash

	for _, c := range contribs {
		e := ObjectEntry{Digest: c.digest, Revision: b.Revision}
		if old, ok := prev.Objects[c.key]; ok && old.Digest == c.digest && old.Revision > 0 && old.Revision <= b.Revision {
			e.Revision = old.Revision
		}
		res.State.Objects[c.key] = e
		kind, name, _ := strings.Cut(c.key, "/")
		if kind == "User" {
			st := res.Users[name]
			st.IncludedRevision = e.Revision
			res.Users[name] = st
		} else {
			st := res.ACLs[name]
			st.IncludedRevision = e.Revision
			res.ACLs[name] = st
		}
	}
	return res, nil
}

// compileUsers resolves usernames and passwords and returns the bundle's
// users, sorted by username.
func compileUsers(in Input, prev *State, res *Result, hashPassword func([]byte) (string, error)) ([]authz.User, []contribution, error) {
	live := make([]*v1alpha1.User, 0, len(in.Users))
	for i := range in.Users {
		u := &in.Users[i]
		if u.DeletionTimestamp != nil || !belongs(in.Broker, u.Namespace, u.Spec.BrokerRef.Name) {
			continue
		}
		live = append(live, u)
	}
	// Oldest first: it keeps a contested username.
	slices.SortFunc(live, func(a, b *v1alpha1.User) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})

	holders := make(map[string]string, len(live)) // username → User name
	users := make([]authz.User, 0, len(live))
	var contribs []contribution
	for _, u := range live {
		username := Username(u)
		secretName, secretKey := PasswordSecret(u)
		st := ObjectStatus{Username: username, SecretName: secretName}
		if holder, taken := holders[username]; taken {
			st.Reason = v1alpha1.ReasonUsernameConflict
			st.Message = trim(fmt.Sprintf("username %q is already used by User %q, which is older; the oldest User keeps a username, so this one is left out", username, holder))
			res.Users[u.Name] = st
			continue
		}
		holders[username] = u.Name

		password, msg := lookupPassword(in.Secrets, secretName, secretKey, u.Spec.PasswordSecretRef == nil)
		if msg != "" {
			st.Reason, st.Message = v1alpha1.ReasonSecretNotFound, trim(msg)
			res.Users[u.Name] = st
			continue
		}

		digest := passwordDigest(res.State.Key, username, password)
		var hash string
		if p, ok := prev.Passwords[username]; ok && p.Hash != "" && hmac.Equal([]byte(p.Digest), []byte(digest)) {
			hash = p.Hash
		} else {
			h, err := hashPassword(password)
			if err != nil {
				return nil, nil, fmt.Errorf("hash password of User %s: %w", u.Name, err)
			}
			hash = h
		}

		au := authz.User{Username: username, PasswordHash: hash, Groups: cloneOrNil(u.Spec.Groups), Disabled: u.Spec.Disabled,
			Limits: bundleLimits(u.Spec.Limits)}
		if err := (&authz.Bundle{APIVersion: authz.APIVersion, Users: []authz.User{au}}).Validate(); err != nil {
			st.Reason = v1alpha1.ReasonInvalid
			st.Message = trim("refused by the broker's validation: " + userProblems(username, err))
			res.Users[u.Name] = st
			continue
		}
		slices.Sort(au.Groups)

		res.State.Passwords[username] = PasswordEntry{Digest: digest, Hash: hash}
		st.Included, st.Reason = true, v1alpha1.ReasonPending
		res.Users[u.Name] = st
		users = append(users, au)
		contribs = append(contribs, contribution{key: "User/" + u.Name, digest: digestOf(au)})
	}
	slices.SortFunc(users, func(a, b authz.User) int { return cmp.Compare(a.Username, b.Username) })
	return users, contribs, nil
}

// lookupPassword returns the password, or why there is none.
func lookupPassword(secrets map[string]*corev1.Secret, name, key string, generated bool) ([]byte, string) {
	s := secrets[name]
	switch {
	case s == nil && generated:
		return nil, fmt.Sprintf("waiting for generated Secret %q", name)
	case s == nil:
		return nil, fmt.Sprintf("Secret %q not found", name)
	}
	v, ok := s.Data[key]
	switch {
	case !ok && generated:
		return nil, fmt.Sprintf("waiting for key %q in generated Secret %q", key, name)
	case !ok:
		return nil, fmt.Sprintf("Secret %q has no key %q", name, key)
	case len(v) == 0:
		return nil, fmt.Sprintf("key %q of Secret %q is empty", key, name)
	}
	return v, ""
}

// compileACLs maps each ACL's rules 1:1 to bundle rules, leaving out ACLs
// the broker would refuse. The rules come back in canonical order.
func compileACLs(in Input, res *Result) ([]authz.Rule, []contribution) {
	type encoded struct {
		rule authz.Rule
		enc  []byte
	}
	var all []encoded
	var contribs []contribution
	for i := range in.ACLs {
		a := &in.ACLs[i]
		if a.DeletionTimestamp != nil || !belongs(in.Broker, a.Namespace, a.Spec.BrokerRef.Name) {
			continue
		}
		rules := make([]authz.Rule, len(a.Spec.Rules))
		for k, r := range a.Spec.Rules {
			rules[k] = toRule(r)
		}
		// Validate in spec order so indexes in messages match spec.rules.
		if err := (&authz.Bundle{APIVersion: authz.APIVersion, Rules: rules}).Validate(); err != nil {
			res.ACLs[a.Name] = ObjectStatus{Reason: v1alpha1.ReasonInvalid, Message: trim("refused by the broker's validation: " + aclProblems(err))}
			continue
		}
		encs := make([][]byte, len(rules))
		for k := range rules {
			canonicalizeRule(&rules[k])
			encs[k] = mustJSON(rules[k])
			all = append(all, encoded{rules[k], encs[k]})
		}
		slices.SortFunc(encs, bytes.Compare)
		res.ACLs[a.Name] = ObjectStatus{Included: true, Reason: v1alpha1.ReasonPending, RuleCount: int32(len(rules))}
		contribs = append(contribs, contribution{key: "ACL/" + a.Name, digest: digestOf(encs)})
	}
	slices.SortStableFunc(all, func(x, y encoded) int { return bytes.Compare(x.enc, y.enc) })
	rules := make([]authz.Rule, len(all))
	for i, e := range all {
		rules[i] = e.rule
	}
	return rules, contribs
}

// toRule maps an ACL rule to a bundle rule; effect defaults to allow. The
// API's enums are PascalCase (Publish, Allow), the bundle's lower case:
// the bundle is the broker's own format and keeps its spelling.
func toRule(r v1alpha1.ACLRule) authz.Rule {
	actions := make([]authz.Action, len(r.Actions))
	for i, a := range r.Actions {
		actions[i] = authz.Action(strings.ToLower(string(a)))
	}
	effect := authz.Effect(strings.ToLower(string(r.Effect)))
	if effect == "" {
		effect = authz.EffectAllow
	}
	return authz.Rule{
		Subjects: authz.Subjects{
			Users:     cloneOrNil(r.Subjects.Users),
			Groups:    cloneOrNil(r.Subjects.Groups),
			ClientIDs: cloneOrNil(r.Subjects.ClientIDs),
		},
		Topics:  cloneOrNil(r.Topics),
		Actions: actions,
		Effect:  effect,
	}
}

// cloneOrNil copies s; empty becomes nil, as the bundle's JSON (omitempty)
// decodes it, so Result.Bundle equals what the broker parses.
func cloneOrNil(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}

// canonicalizeRule sorts the lists of r (which it owns); rule semantics do
// not depend on their order.
func canonicalizeRule(r *authz.Rule) {
	slices.Sort(r.Subjects.Users)
	slices.Sort(r.Subjects.Groups)
	slices.Sort(r.Subjects.ClientIDs)
	slices.Sort(r.Topics)
	slices.Sort(r.Actions)
}

// belongs reports whether an object in namespace referring to brokerName
// targets b.
func belongs(b *v1alpha1.Broker, namespace, brokerName string) bool {
	return namespace == b.Namespace && brokerName == b.Name
}

// aclProblems turns authz validation errors of an ACL's rules into one line
// naming the ACL's fields: rules[1].topics[0] → spec.rules[1].topics[0].
func aclProblems(err error) string {
	lines := problemLines(err)
	for i, l := range lines {
		if strings.HasPrefix(l, "rules[") {
			lines[i] = "spec." + l
		}
	}
	return strings.Join(lines, "; ")
}

// userProblems turns authz validation errors of a one-user bundle into one
// line, without the `users[0] "<username>": ` prefix.
func userProblems(username string, err error) string {
	prefix := fmt.Sprintf("users[0] %q: ", username)
	lines := problemLines(err)
	for i, l := range lines {
		if rest, ok := strings.CutPrefix(l, prefix); ok {
			lines[i] = rest
		}
	}
	return strings.Join(lines, "; ")
}

func problemLines(err error) []string {
	var out []string
	for _, l := range strings.Split(err.Error(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// digestOf is "sha256:<hex>" of v's JSON.
func digestOf(v any) string {
	sum := sha256.Sum256(mustJSON(v))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// mustJSON marshals values that cannot fail to marshal (strings, slices,
// bools of bundle types).
func mustJSON(v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("authsync: marshal %T: %v", v, err))
	}
	return data
}

// trim bounds a message to maxMessageLen bytes, on a rune boundary.
func trim(s string) string {
	if len(s) <= maxMessageLen {
		return s
	}
	cut := maxMessageLen - len("...")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

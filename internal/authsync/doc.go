// Package authsync compiles the Users and ACLs of one Broker into its auth
// bundle (authz.Bundle, the operator↔broker contract) and pushes bundles to
// broker pods over their admin API.
//
// It is pure compile logic plus an HTTP client: it reads no Kubernetes
// objects itself (the controller lists them and passes them in) and never
// imports controller-runtime's client.
//
// # Compile
//
// Compile is deterministic given its Input: the same objects and the same
// Previous State give the same bundle bytes, hash and revision. The only
// randomness is the salt of a password hash, and a hash is only made for a
// password that is new or changed: State.Passwords remembers, per username,
// an HMAC-SHA256 digest of (username, password) under State.Key next to the
// hash made for it, and a password whose digest matches reuses that hash.
// So an unchanged password is never re-hashed (PBKDF2 costs ~20 ms), the
// bundle hash stays stable across reconciles, and nothing in State reveals
// a password without the key. State lives in the Broker's auth Secret under
// a key that is not mounted into broker pods.
//
// The revision increases by one exactly when the bundle's content hash
// (authz.Bundle.Hash, independent of order) changes. The bundle's JSON is
// canonical: users sorted by username, every list inside a user or rule
// sorted, rules sorted by their encoding. Equal hash therefore means equal
// bytes, so re-pushing an unchanged bundle is a no-op on the broker.
//
// Per object:
//
//   - username is spec.username or metadata.name. When several Users of a
//     Broker claim one username, the oldest (creationTimestamp, then name)
//     keeps it whatever its own state (a missing Secret does not hand the
//     username to a younger User, so holders never flip); the others get
//     UsernameConflict naming the holder and are left out.
//   - the password is the bytes of spec.passwordSecretRef's key, or of key
//     v1alpha1.CredentialsPasswordKey of the generated Secret
//     v1alpha1.CredentialsSecretName ("<user>-mqtt-credentials"). A
//     missing Secret, a missing key or an empty value is SecretNotFound and
//     the User is left out (its clients lose access). Values are used as
//     they are: a trailing newline is part of the password.
//   - Users and ACLs being deleted (deletionTimestamp set) are left out and
//     reported in neither Result.Users nor Result.ACLs; objects that name
//     another Broker or namespace are ignored (tenant isolation).
//   - each User and each ACL is validated on its own with authz's rules. One
//     the broker would refuse is left out with Invalid and a message naming
//     the field (spec.rules[1].topics[0] ...); the rest of the bundle still
//     ships, so one tenant's typo does not freeze everyone's auth. The whole
//     bundle is validated again; a failure there is a bug and an error.
//   - State.Objects records, per included object ("User/<name>",
//     "ACL/<name>"), a digest of what it contributes and the first revision
//     that contained exactly that contribution (ObjectStatus.IncludedRevision).
//     A User or ACL is in force on a pod once the pod applied at least that
//     revision. Excluded and vanished objects have no entry.
//
// # Push
//
// HTTPClient speaks the broker's admin API (GET/PUT /v1/auth with a bearer
// token). It does not retry; the controller retries with backoff. A 409
// becomes a *StaleError (errors.Is ErrStale) carrying the broker's current
// revision: the operator's State is behind the broker (for example, the auth
// Secret was recreated), and State.Rebase moves the next revision above it.
package authsync

package authz

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// Password hash parameters. See the package documentation for the reasons.
const (
	// DefaultIterations is the PBKDF2 count HashPassword callers should use:
	// about 19 ms per hash on the 2-core build machine.
	DefaultIterations = 40_000
	// MaxIterations bounds the cost of verifying one hash (several seconds).
	MaxIterations = 10_000_000
	// SaltSize is the salt length HashPassword writes, in bytes.
	SaltSize = 16

	schemePBKDF2SHA512 = "7" // mosquitto's $7$
	hashSize           = sha512.Size
	minSaltSize        = 8
	maxSaltSize        = 64
)

// Password hash errors.
var (
	// ErrUnknownHashScheme is returned for a hash that is not $7$.
	ErrUnknownHashScheme = errors.New("authz: unknown password hash scheme")
	// ErrMalformedHash is returned for a $7$ hash that cannot be decoded.
	ErrMalformedHash = errors.New("authz: malformed password hash")
)

// pbkdf2Hash is a decoded $7$ hash.
type pbkdf2Hash struct {
	iterations int
	salt       []byte
	key        []byte
}

// HashPassword returns a $7$ PBKDF2-HMAC-SHA512 hash of password with a
// random SaltSize-byte salt. Use DefaultIterations unless there is a reason
// not to.
func HashPassword(password []byte, iterations int) (string, error) {
	if iterations < 1 || iterations > MaxIterations {
		return "", fmt.Errorf("hash password: iterations %d out of range [1, %d]", iterations, MaxIterations)
	}
	salt := make([]byte, SaltSize)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: read salt: %w", err)
	}
	key, err := pbkdf2.Key(sha512.New, string(password), salt, iterations, hashSize)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	var b strings.Builder
	b.WriteString("$7$")
	b.WriteString(strconv.Itoa(iterations))
	b.WriteByte('$')
	b.WriteString(base64.StdEncoding.EncodeToString(salt))
	b.WriteByte('$')
	b.WriteString(base64.StdEncoding.EncodeToString(key))
	return b.String(), nil
}

// VerifyPassword reports whether password matches hash, comparing in
// constant time. An error means the hash itself is unusable (unknown scheme,
// malformed), never that the password is wrong.
func VerifyPassword(hash string, password []byte) (bool, error) {
	h, err := parsePasswordHash(hash)
	if err != nil {
		return false, err
	}
	return h.verify(password), nil
}

func (h *pbkdf2Hash) verify(password []byte) bool {
	key, err := pbkdf2.Key(sha512.New, string(password), h.salt, h.iterations, len(h.key))
	if err != nil {
		// Only reachable in FIPS 140-only mode with parameters it refuses.
		return false
	}
	return subtle.ConstantTimeCompare(key, h.key) == 1
}

// parsePasswordHash decodes "$7$<iterations>$<salt>$<hash>". Errors never
// contain the hash itself, only its scheme id.
func parsePasswordHash(s string) (pbkdf2Hash, error) {
	if !strings.HasPrefix(s, "$") {
		return pbkdf2Hash{}, fmt.Errorf("%w: want $7$ (PBKDF2-SHA512), got no $<id>$ prefix", ErrUnknownHashScheme)
	}
	parts := strings.Split(s[1:], "$")
	if parts[0] != schemePBKDF2SHA512 {
		id := parts[0]
		if len(id) > 16 {
			id = id[:16] + "..."
		}
		hint := ""
		if id == "6" {
			hint = " (mosquitto's single-round sha512 is too weak; rehash with mosquitto_passwd -H sha512-pbkdf2 or fleetmq-broker passwd)"
		}
		return pbkdf2Hash{}, fmt.Errorf("%w $%s$: want $7$ (PBKDF2-SHA512)%s", ErrUnknownHashScheme, id, hint)
	}
	if len(parts) != 4 {
		return pbkdf2Hash{}, fmt.Errorf("%w: $7$ needs 4 fields $7$<iterations>$<salt>$<hash>, got %d", ErrMalformedHash, len(parts))
	}
	it, err := strconv.Atoi(parts[1])
	if err != nil || it < 1 || it > MaxIterations {
		return pbkdf2Hash{}, fmt.Errorf("%w: iterations must be an integer in [1, %d]", ErrMalformedHash, MaxIterations)
	}
	salt, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(salt) < minSaltSize || len(salt) > maxSaltSize {
		return pbkdf2Hash{}, fmt.Errorf("%w: salt must be standard base64 of %d to %d bytes", ErrMalformedHash, minSaltSize, maxSaltSize)
	}
	key, err := base64.StdEncoding.DecodeString(parts[3])
	if err != nil || len(key) != hashSize {
		return pbkdf2Hash{}, fmt.Errorf("%w: hash must be standard base64 of %d bytes", ErrMalformedHash, hashSize)
	}
	return pbkdf2Hash{iterations: it, salt: salt, key: key}, nil
}

// dummyHash is verified against for unknown usernames so that the time to
// refuse does not reveal whether a username exists.
var dummyHash = sync.OnceValue(func() pbkdf2Hash {
	salt := make([]byte, SaltSize)
	rand.Read(salt)
	return pbkdf2Hash{iterations: DefaultIterations, salt: salt, key: make([]byte, hashSize)}
})

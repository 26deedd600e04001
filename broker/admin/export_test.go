package admin

import "crypto/sha256"

// TokenMatches is tokenMatches against the token itself.
func TokenMatches(got, token string) bool { return tokenMatches(got, sha256.Sum256([]byte(token))) }

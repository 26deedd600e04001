package admin

import "crypto/sha256"

// TokenMatches is tokenMatches against the token itself.
func TokenMatches(got, token string) bool { return tokenMatches(got, sha256.Sum256([]byte(token))) }

// OnFileChecked makes the watcher call f after each look at the auth file
// (changed: the content differed and went to Apply). Set it before
// WatchFile.
func (l *Loader) OnFileChecked(f func(changed bool)) { l.fileChecked = f }

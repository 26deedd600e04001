package packets

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// ValidUTF8 reports whether b may appear in an MQTT UTF-8 Encoded String
// [MQTT-1.5.4-1]: well-formed UTF-8, which excludes the surrogates
// U+D800..U+DFFF, and no U+0000 [MQTT-1.5.4-2]. The other control
// characters and non-characters are only "SHOULD NOT" in the spec and are
// accepted.
func ValidUTF8(b []byte) bool {
	return bytes.IndexByte(b, 0) < 0 && utf8.Valid(b)
}

func validUTF8String(s string) bool {
	return strings.IndexByte(s, 0) < 0 && utf8.ValidString(s)
}

// ValidTopicName reports whether b is a valid Topic Name as it appears in a
// PUBLISH or a will: valid UTF-8 and no wildcard characters
// [MQTT-3.3.2-2], [MQTT-4.7.0-1]. Whether an empty name is allowed (a v5
// PUBLISH with a Topic Alias) is the caller's decision.
func ValidTopicName(b []byte) bool {
	return !hasWildcard(b) && ValidUTF8(b)
}

func hasWildcard(b []byte) bool {
	return bytes.IndexByte(b, '+') >= 0 || bytes.IndexByte(b, '#') >= 0
}

// ValidTopicFilter reports whether s is a valid Topic Filter [MQTT-4.7]:
// non-empty [MQTT-4.7.3-1], valid UTF-8, '#' only as the whole last level
// [MQTT-4.7.1-2] and '+' only as a whole level [MQTT-4.7.1-3]. Shared
// subscription syntax ($share/...) is checked separately, for v5 only.
func ValidTopicFilter(s string) bool {
	if s == "" || !validUTF8String(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '#':
			// Alone in its level and the last character.
			if i != len(s)-1 || (i > 0 && s[i-1] != '/') {
				return false
			}
		case '+':
			if (i > 0 && s[i-1] != '/') || (i < len(s)-1 && s[i+1] != '/') {
				return false
			}
		}
	}
	return true
}

const sharePrefix = "$share/"

// validSharedFilter checks the v5 shared subscription form
// $share/{ShareName}/{filter} [MQTT-4.8.2-1], [MQTT-4.8.2-2]: the share name
// is at least one character and holds no '/', '+' or '#', and a filter
// follows it. It reports whether s is shared at all, and whether it is valid.
func validSharedFilter(s string) (shared, ok bool) {
	if !strings.HasPrefix(s, sharePrefix) {
		return false, true
	}
	rest := s[len(sharePrefix):]
	slash := strings.IndexByte(rest, '/')
	if slash <= 0 {
		return true, false
	}
	name, filter := rest[:slash], rest[slash+1:]
	if strings.ContainsAny(name, "+#") {
		return true, false
	}
	return true, ValidTopicFilter(filter)
}

package authz

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// parseStdlib is Parse as it was before its own decoder (parse.go,
// jsonlex.go): encoding/json with unknown fields disallowed. The
// differential tests hold Parse to it.
func parseStdlib(data []byte) (*Bundle, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var b Bundle
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("parse auth bundle: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("parse auth bundle: trailing data after the JSON object")
	}
	return &b, nil
}

// knownFields are every field name of the schema.
var knownFields = func() map[string]bool {
	m := make(map[string]bool)
	for _, n := range fieldNames {
		m[n] = true
	}
	return m
}()

// compareWithStdlib fails t unless Parse and parseStdlib agree on data:
// both succeed with deeply equal bundles, or both fail, or Parse fails for
// one of its documented stricter reasons.
func compareWithStdlib(t *testing.T, data []byte) {
	t.Helper()
	got, err := Parse(data)
	want, stdErr := parseStdlib(data)
	switch {
	case err == nil && stdErr == nil:
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Parse(%q):\n got %#v\nwant %#v", data, got, want)
		}
	case err == nil:
		t.Fatalf("Parse(%q) succeeded, encoding/json failed: %v", data, stdErr)
	case stdErr == nil:
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Fatalf("Parse(%q): error %v is not a *ParseError", data, err)
		}
		switch {
		case strings.HasPrefix(pe.Msg, "duplicate field "):
		case strings.HasPrefix(pe.Msg, "unknown field "):
			// encoding/json matched it case-insensitively.
			var name string
			fmt.Sscanf(pe.Msg, "unknown field %q", &name)
			if knownFields[name] {
				t.Fatalf("Parse(%q): %v, but %q is a known field", data, err, name)
			}
		case pe.Path == "" && pe.Msg == "expected the bundle object, found null":
		default:
			t.Fatalf("Parse(%q) failed (%v), encoding/json succeeded: %#v", data, err, want)
		}
	}
	if err != nil {
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Fatalf("Parse(%q): error %v is not a *ParseError", data, err)
		}
		if pe.Offset < 0 || pe.Offset > len(data) || !strings.HasPrefix(err.Error(), "parse auth bundle: ") {
			t.Fatalf("Parse(%q): bad error %v (offset %d)", data, err, pe.Offset)
		}
	}
}

// parseSeeds are documents, valid and not, that exercise the decoder.
var parseSeeds = []string{
	`{"apiVersion":"authz.fleetmq.io/v1","revision":1,"allowAnonymous":true,"users":[],"rules":[{"subjects":{"clientIDs":["*"]},"topics":["a/%c/#","+/x"],"actions":["publish","subscribe"],"effect":"allow"}]}`,
	`{"apiVersion":"authz.fleetmq.io/v1","users":[{"username":"u","passwordHash":"` + mosquittoHash101 + `"}],"rules":[{"subjects":{"users":["u"]},"topics":["#"],"actions":["subscribe"],"effect":"deny"}]}`,
	`{"rules":[{"topics":["a/#/b"]}]}`,
	` { "revision" : -0 , "users" : [ { "username" : "a" , "groups" : [ "g" , "h" ] , "disabled" : true } ] } ` + "\n\t\r",
	`{}`, `{ }`, `[]`, `null`, ` null `, `""`, `1`, `true`, ``, ` `, `{`, `}`, `{"a"}`, `{"revision"}`, `{"revision":}`,
	`{"revision":1,}`, `{,}`, `{"revision":1 "users":[]}`, `{"users":[,]}`, `{"users":[{},]}`, `{"users":[{}{}]}`,
	`{"revision":null,"apiVersion":null,"allowAnonymous":null,"users":null,"rules":null}`,
	`{"users":[null,{"username":null,"passwordHash":null,"groups":null,"disabled":null}]}`,
	`{"rules":[null,{"subjects":null,"topics":null,"actions":null,"effect":null}]}`,
	`{"rules":[{"subjects":{"users":null,"groups":[],"clientIDs":[null,""]},"topics":[],"actions":[null,"x",""],"effect":""}]}`,
	`{"users":[],"rules":[]}`, `{"users":[ ],"rules":[{"subjects":{ },"topics":[ ]}]}`,
	`{"revision":9223372036854775807}`, `{"revision":-9223372036854775808}`,
	`{"revision":9223372036854775808}`, `{"revision":-9223372036854775809}`,
	`{"revision":1.0}`, `{"revision":1e3}`, `{"revision":1E+3}`, `{"revision":-1.5e-3}`, `{"revision":01}`, `{"revision":-}`,
	`{"revision":+1}`, `{"revision":.5}`, `{"revision":1.}`, `{"revision":1e}`, `{"revision":0x10}`, `{"revision":"1"}`,
	`{"revision":true}`, `{"revision":tru}`, `{"revision":nul}`, `{"revision":[]}`, `{"revision":{}}`, `{"revision":1`,
	`{"allowAnonymous":1}`, `{"allowAnonymous":"true"}`, `{"allowAnonymous":falsy}`, `{"allowAnonymous":truex}`,
	`{"apiVersion":1}`, `{"apiVersion":["a"]}`, `{"users":{}}`, `{"users":"a"}`, `{"users":[1]}`, `{"users":[[]]}`,
	`{"rules":[{"subjects":[]}]}`, `{"rules":[{"topics":"a"}]}`, `{"rules":[{"actions":[1]}]}`, `{"rules":[{"effect":[]}]}`,
	`{"revision":1} {}`, `{"revision":1}x`, `{"revision":1}]`, `{"revision":1}` + "\n", `{"revision":1}null`, "\ufeff{}",
	`{"Revision":1}`, `{"REVISION":1}`, `{"users":[{"UserName":"a"}]}`, `{"rules":[{"subjects":{"clientids":["a"]}}]}`,
	`{"revision":1,"revision":2}`, `{"users":[{"username":"a","username":"b"}]}`, `{"rules":[{"subjects":{"users":[],"users":[]}}]}`,
	`{"revison":1}`, `{"users":[{"password":"x"}]}`, `{"rules":[{"subjects":{"user":["a"]}}]}`, `{"":1}`,
	`{"user\u006eame":1}`, `{"users":[{"user\u006eame":"a"}]}`, `{"\u0075sers":[]}`, `{"users\u0000":[]}`,
	`{"apiVersion":"\"\\\/\b\f\n\r\t"}`, `{"apiVersion":"\u00e9\u4e2d\uD83D\uDE00"}`, `{"apiVersion":"\uD83D"}`,
	`{"apiVersion":"\uDE00\uD83D"}`, `{"apiVersion":"\uD83Dx"}`, `{"apiVersion":"\uD83D\uD83D\uDE00"}`, `{"apiVersion":"\uD83D\n"}`,
	`{"apiVersion":"\uD83D\u0041"}`, `{"apiVersion":"\uD83D\uZZZZ"}`, `{"apiVersion":"\u12"}`, `{"apiVersion":"\u12G4"}`,
	`{"apiVersion":"\x"}`, `{"apiVersion":"\'"}`, `{"apiVersion":"\`, `{"apiVersion":"abc`, `{"apiVersion":"a` + "\n" + `b"}`,
	`{"apiVersion":"a` + "\x7f" + `"}`, `{"apiVersion":"` + "\xff\xfe" + `"}`, `{"apiVersion":"` + "\xed\xa0\x80" + `"}`,
	`{"apiVersion":"` + "\xc0\xaf" + `"}`, `{"apiVersion":"` + "\xe2\x82" + `"}`, `{"apiVersion":"` + "\xef\xbf\xbd" + `"}`,
	`{"apiVersion":"` + "é中😀" + `"}`, `{"apiVersion":"\u0000"}`, `{"users":[{"username":"` + "\xff" + `"}]}`,
	`{"` + "\xff" + `":1}`, `{"rules":[{"actions":["publish","subscribe","pub\u006cish"],"effect":"\u0061llow"}]}`,
	`{"rules":[{"effect":"deny"},{"effect":"allow"},{"effect":"Deny"}]}`,
}

func TestParseMatchesStdlib(t *testing.T) {
	for _, s := range parseSeeds {
		compareWithStdlib(t, []byte(s))
	}
	if testing.Short() {
		return
	}
	compareWithStdlib(t, benchBundleJSON())
	indented, err := json.MarshalIndent(benchBundle(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	compareWithStdlib(t, indented)
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		json       string
		want       string // the whole error
		wantOffset int
	}{
		{`{"users":[{"username":"a"},{"username":"b","passwordHas":"x"}]}`,
			`parse auth bundle: users[1]: unknown field "passwordHas" (byte offset 43, line 1)`, 43},
		{"{\n  \"revision\": 1,\n  \"revision\": 2\n}",
			`parse auth bundle: duplicate field "revision" (byte offset 21, line 3)`, 21},
		{`{"Revision":1}`, `parse auth bundle: unknown field "Revision" (byte offset 1, line 1)`, 1},
		{`{"rules":[{"subjects":{"groups":["a",7]}}]}`,
			`parse auth bundle: rules[0].subjects.groups[1]: expected a string, found a number (byte offset 37, line 1)`, 37},
		{`{"revision":1.5}`, `parse auth bundle: revision: number 1.5 is not an integer (byte offset 12, line 1)`, 12},
		{`{"revision":99999999999999999999}`,
			`parse auth bundle: revision: number 99999999999999999999 overflows int64 (byte offset 12, line 1)`, 12},
		{`{"users":[{"disabled":"yes"}]}`,
			`parse auth bundle: users[0].disabled: expected a boolean, found a string (byte offset 22, line 1)`, 22},
		{`{"users":[{"groups":["a" "b"]}]}`,
			`parse auth bundle: users[0].groups[0]: invalid character '"' after array element (byte offset 25, line 1)`, 25},
		{`{"revision":1} {}`, `parse auth bundle: trailing data after the JSON object (byte offset 15, line 1)`, 15},
		{`apiVersion: x`, `parse auth bundle: invalid character 'a' looking for beginning of value (byte offset 0, line 1)`, 0},
		{`null`, `parse auth bundle: expected the bundle object, found null (byte offset 0, line 1)`, 0},
		{`{"apiVersion":"v1`, `parse auth bundle: apiVersion: unexpected end of JSON input (byte offset 17, line 1)`, 17},
		{`{"apiVersion":"a\qb"}`, `parse auth bundle: apiVersion: invalid character 'q' in string escape code (byte offset 17, line 1)`, 17},
		{`{"rules":[{"effect":nope}]}`,
			`parse auth bundle: rules[0].effect: invalid character 'o' in literal null (expecting 'u') (byte offset 21, line 1)`, 21},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.json))
		if err == nil || err.Error() != tt.want {
			t.Errorf("Parse(%s):\n got %v\nwant %s", tt.json, err, tt.want)
			continue
		}
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Offset != tt.wantOffset {
			t.Errorf("Parse(%s): got %#v, want a *ParseError at offset %d", tt.json, pe, tt.wantOffset)
		}
	}
}

// TestParseListsAreIndependent: lists share slab memory, so appending to
// one must not change its neighbour.
func TestParseListsAreIndependent(t *testing.T) {
	b, err := Parse([]byte(`{"users":[{"groups":["a","b"]},{"groups":["c"]}],"rules":[{"topics":["x"],"actions":["publish"]},{"topics":["y"],"actions":["subscribe"]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	_ = append(b.Users[0].Groups, "z")
	_ = append(b.Rules[0].Topics, "z")
	_ = append(b.Rules[0].Actions, "z")
	if b.Users[1].Groups[0] != "c" || b.Rules[1].Topics[0] != "y" || b.Rules[1].Actions[0] != ActionSubscribe {
		t.Errorf("append to one list changed another: %+v", b)
	}
}

func TestParseAllocations(t *testing.T) {
	if testing.Short() {
		t.Skip("large bundle")
	}
	data := benchBundleJSON()
	allocs := testing.AllocsPerRun(2, func() {
		if _, err := Parse(data); err != nil {
			t.Fatal(err)
		}
	})
	// 10,000 users and 50,000 rules: a few hundred arena chunks, slabs and
	// list growths, nothing per string.
	if allocs > 1000 {
		t.Errorf("Parse of the bench bundle: %v allocations, want at most 1000", allocs)
	}
}

// FuzzParse: Parse agrees with encoding/json on every input, modulo the
// stricter rules in Parse's doc comment (bundle.go).
func FuzzParse(f *testing.F) {
	for _, s := range parseSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		compareWithStdlib(t, data)
	})
}

// TestPlain8 holds the 8-byte scan to the byte table: every word with one
// byte of each value at each position, and random words.
func TestPlain8(t *testing.T) {
	check := func(w [8]byte) {
		want := true
		for _, c := range w {
			want = want && plain[c]
		}
		if got := plain8(binary.LittleEndian.Uint64(w[:])); got != want {
			t.Fatalf("plain8(%q): got %v, want %v", w, got, want)
		}
	}
	for c := range 256 {
		for p := range 8 {
			for _, fill := range []byte{'a', ' ', '~', '#', ']', '!'} {
				w := [8]byte{fill, fill, fill, fill, fill, fill, fill, fill}
				w[p] = byte(c)
				check(w)
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 1_000_000 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], r.Uint64())
		for k := range w {
			if r.IntN(4) != 0 {
				w[k] = 0x20 + w[k]%0x60 // mostly printable ASCII
			}
		}
		check(w)
	}
}

// TestParseRandomBundles compares Parse with encoding/json on random
// bundles, encoded compactly and indented, with strings full of characters
// that need escaping.
func TestParseRandomBundles(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	pool := []string{"a", "Z", "/", "+", "#", "%u", `"`, `\`, "\n", "\t", "\x00", "\x1f", "<", "&", "é", "中", "😀", "\u2028", "\ufffd", "\xff", "\xed\xa0\x80"}
	str := func() string {
		var b strings.Builder
		for range r.IntN(12) {
			b.WriteString(pool[r.IntN(len(pool))])
		}
		return b.String()
	}
	strs := func() []string {
		switch r.IntN(4) {
		case 0:
			return nil
		case 1:
			return []string{}
		}
		list := make([]string, 1+r.IntN(3))
		for i := range list {
			list[i] = str()
		}
		return list
	}
	for range 300 {
		b := &Bundle{APIVersion: str(), Revision: r.Int64() - r.Int64(), AllowAnonymous: r.IntN(2) == 0}
		for range r.IntN(5) {
			b.Users = append(b.Users, User{Username: str(), PasswordHash: str(), Groups: strs(), Disabled: r.IntN(2) == 0})
		}
		for range r.IntN(5) {
			rule := Rule{Subjects: Subjects{Users: strs(), Groups: strs(), ClientIDs: strs()}, Topics: strs(), Effect: Effect(str())}
			for _, a := range strs() {
				rule.Actions = append(rule.Actions, Action(a))
			}
			b.Rules = append(b.Rules, rule)
		}
		compact, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		indented, err := json.MarshalIndent(b, "\t", " \r\n")
		if err != nil {
			t.Fatal(err)
		}
		for _, data := range [][]byte{compact, bytes.ReplaceAll(indented, []byte(" \r\n"), []byte("\r\n \t"))} {
			if _, err := Parse(data); err != nil {
				t.Fatalf("Parse(%q): %v", data, err)
			}
			compareWithStdlib(t, data)
		}
	}
}

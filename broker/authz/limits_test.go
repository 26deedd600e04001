package authz

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// limitsSeeds exercise the limits object, valid and not, against
// encoding/json.
var limitsSeeds = []string{
	`{"users":[{"username":"u","limits":{"maxConnections":2,"maxSubscriptionsPerClient":10,"publishRate":{"messagesPerSecond":5,"burst":20}}}]}`,
	`{"users":[{"username":"u","limits":null}]}`,
	`{"users":[{"username":"u","limits":{}}]}`,
	`{"users":[{"username":"u","limits":{"publishRate":null,"maxConnections":null}}]}`,
	`{"users":[{"username":"u","limits":{"publishRate":{}}}]}`,
	`{"users":[{"username":"u","limits":{"maxConnections":1.5}}]}`,
	`{"users":[{"username":"u","limits":{"maxConnections":"1"}}]}`,
	`{"users":[{"username":"u","limits":{"maxconnections":1}}]}`,
	`{"users":[{"username":"u","limits":{"maxConnections":1,"maxConnections":2}}]}`,
	`{"users":[{"username":"u","limits":{"publishRate":{"burst":1,"burst":2}}}]}`,
	`{"users":[{"username":"u","limits":{"publishRate":{"rate":1}}}]}`,
	`{"users":[{"username":"u","limits":[]}]}`,
	`{"users":[{"username":"u","limits":{"publishRate":[1]}}]}`,
	`{"users":[{"username":"u","limits":{"maxConnections":-3,"publishRate":{"messagesPerSecond":99999999999999999999}}}]}`,
	`{"users":[{"username":"u","limits":{"maxConnections":1},"limits":{}}]}`,
}

func TestParseLimitsMatchesStdlib(t *testing.T) {
	for _, s := range limitsSeeds {
		compareWithStdlib(t, []byte(s))
	}
}

func TestParseLimits(t *testing.T) {
	b, err := Parse([]byte(limitsSeeds[0]))
	if err != nil {
		t.Fatal(err)
	}
	want := &UserLimits{MaxConnections: 2, MaxSubscriptionsPerClient: 10, PublishRate: &PublishRate{MessagesPerSecond: 5, Burst: 20}}
	if got := b.Users[0].Limits; !reflect.DeepEqual(got, want) {
		t.Errorf("limits: got %+v, want %+v", got, want)
	}
	for _, s := range []string{limitsSeeds[1], `{"users":[{"username":"u"}]}`} {
		b, err := Parse([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		if b.Users[0].Limits != nil {
			t.Errorf("Parse(%s): limits %+v, want nil", s, b.Users[0].Limits)
		}
	}
}

func TestParseLimitsErrors(t *testing.T) {
	tests := []struct{ json, want string }{
		{`{"users":[{"username":"u","limits":{"maxconnections":1}}]}`,
			`parse auth bundle: users[0].limits: unknown field "maxconnections" (byte offset 36, line 1)`},
		{`{"users":[{"username":"u","limits":{"publishRate":{"rate":1}}}]}`,
			`parse auth bundle: users[0].limits.publishRate: unknown field "rate" (byte offset 51, line 1)`},
		{`{"users":[{"username":"u","limits":{"publishRate":{"burst":1.5}}}]}`,
			`parse auth bundle: users[0].limits.publishRate.burst: number 1.5 is not an integer (byte offset 59, line 1)`},
		{`{"users":[{"username":"u","limits":{"maxConnections":1,"maxConnections":2}}]}`,
			`parse auth bundle: users[0].limits: duplicate field "maxConnections" (byte offset 55, line 1)`},
		{`{"users":[{"username":"u","limits":[]}]}`,
			`parse auth bundle: users[0].limits: expected a limits object, found an array (byte offset 35, line 1)`},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.json))
		if err == nil || err.Error() != tt.want {
			t.Errorf("Parse(%s):\n got %v\nwant %s", tt.json, err, tt.want)
		}
		var pe *ParseError
		if err != nil && !errors.As(err, &pe) {
			t.Errorf("Parse(%s): %v is not a *ParseError", tt.json, err)
		}
	}
}

func TestValidateLimits(t *testing.T) {
	user := func(l *UserLimits) *Bundle {
		return &Bundle{APIVersion: APIVersion, Users: []User{{Username: "u", PasswordHash: mosquittoHash101, Limits: l}}}
	}
	for _, l := range []*UserLimits{nil, {}, {MaxConnections: 1, MaxSubscriptionsPerClient: 1, PublishRate: &PublishRate{MessagesPerSecond: 1}},
		{PublishRate: &PublishRate{MessagesPerSecond: maxRate, Burst: maxRate}}} {
		if err := user(l).Validate(); err != nil {
			t.Errorf("limits %+v: %v, want valid", l, err)
		}
	}
	tests := []struct {
		limits *UserLimits
		want   []string
	}{
		{&UserLimits{MaxConnections: -1}, []string{`users[0] "u": limits.maxConnections -1: must not be negative`}},
		{&UserLimits{MaxSubscriptionsPerClient: -2}, []string{`users[0] "u": limits.maxSubscriptionsPerClient -2: must not be negative`}},
		{&UserLimits{PublishRate: &PublishRate{}}, []string{`users[0] "u": limits.publishRate.messagesPerSecond 0: must be between 1 and 1000000000`}},
		{&UserLimits{PublishRate: &PublishRate{MessagesPerSecond: maxRate + 1, Burst: -1}}, []string{
			`users[0] "u": limits.publishRate.messagesPerSecond 1000000001: must be between 1 and 1000000000`,
			`users[0] "u": limits.publishRate.burst -1: must be between 0 and 1000000000`}},
	}
	for _, tt := range tests {
		err := user(tt.limits).Validate()
		if err == nil {
			t.Errorf("limits %+v: valid, want %q", tt.limits, tt.want)
			continue
		}
		if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("limits %+v:\n got %q\nwant %q", tt.limits, got, tt.want)
		}
		if _, err := Compile(user(tt.limits)); err == nil {
			t.Errorf("limits %+v: Compile accepted them", tt.limits)
		}
	}
}

// TestHashLimits: a bundle without limits hashes as it did before limits
// existed (the golden value is what the previous code computed for
// hashFixture), so upgrading the operator does not bump every
// Broker's revision; every limit changes the hash.
func TestHashLimits(t *testing.T) {
	base := hashFixture // TestHash's
	const golden = "sha256:f90fe634732e3685a415307db2ddc4a21ddcb48570d8fc71ff763f93f2bece10"
	if got := base().Hash(); got != golden {
		t.Fatalf("hash of a bundle without limits: got %s, want %s (as before limits existed)", got, golden)
	}
	withLimits := func(l *UserLimits) string {
		b := base()
		b.Users[0].Limits = l
		return b.Hash()
	}
	seen := map[string]string{golden: "none"}
	for name, l := range map[string]*UserLimits{
		"empty":          {},
		"maxConnections": {MaxConnections: 1},
		"maxSubs":        {MaxSubscriptionsPerClient: 1},
		"rate":           {PublishRate: &PublishRate{MessagesPerSecond: 1}},
		"rate burst":     {PublishRate: &PublishRate{MessagesPerSecond: 1, Burst: 2}},
		"rate 2":         {PublishRate: &PublishRate{MessagesPerSecond: 2}},
	} {
		h := withLimits(l)
		if other, dup := seen[h]; dup {
			t.Errorf("limits %s hash like %s", name, other)
		}
		seen[h] = name
	}
	// Disabled and limits share a byte: each combination is distinct.
	b := base()
	b.Users[1].Limits = &UserLimits{}
	if b.Hash() == golden {
		t.Error("limits on a disabled user left the hash unchanged")
	}
}

// TestIdentityLimits: the policy hands each identity its user's limits, a
// copy of the bundle's, through authentication and Rebind.
func TestIdentityLimits(t *testing.T) {
	l := &UserLimits{MaxConnections: 3, PublishRate: &PublishRate{MessagesPerSecond: 2}}
	b := &Bundle{APIVersion: APIVersion, AllowAnonymous: true, Users: []User{
		{Username: "lim", PasswordHash: mosquittoHash101, Limits: l},
		{Username: "free", PasswordHash: mosquittoHash101},
	}}
	p, err := Compile(b)
	if err != nil {
		t.Fatal(err)
	}
	l.PublishRate.MessagesPerSecond = 99 // the policy keeps its own copy
	id, res := p.AuthenticateVerified("lim", "c")
	if res != AuthOK {
		t.Fatalf("AuthenticateVerified: %v", res)
	}
	if got := id.Limits(); got == nil || got.MaxConnections != 3 || got.PublishRate.MessagesPerSecond != 2 {
		t.Errorf("lim's limits: got %+v, want maxConnections 3, 2 messages a second", got)
	}
	if id, _ := p.AuthenticateVerified("free", "c"); id.Limits() != nil {
		t.Errorf("free's limits: got %+v, want nil", id.Limits())
	}
	if id, _ := p.Authenticate("", false, nil, "c"); id.Limits() != nil {
		t.Errorf("anonymous limits: got %+v, want nil", id.Limits())
	}
	b.Users[0].Limits = &UserLimits{MaxConnections: 1}
	p2, err := Compile(b)
	if err != nil {
		t.Fatal(err)
	}
	id2, res := p2.Rebind(id)
	if res != AuthOK || id2.Limits().MaxConnections != 1 || id2.Limits().PublishRate != nil {
		t.Errorf("after Rebind: %v %+v, want ok with maxConnections 1 and no rate", res, id2.Limits())
	}
}

func TestAuthQuotaExceededCodes(t *testing.T) {
	if got := AuthQuotaExceeded.V3ReturnCode(); got != 3 {
		t.Errorf("v3 return code %d, want 3 (server unavailable)", got)
	}
	if got := AuthQuotaExceeded.V5ReasonCode(); got != 0x97 {
		t.Errorf("v5 reason code 0x%02X, want 0x97 (quota exceeded)", got)
	}
	if got := AuthQuotaExceeded.String(); got != "quota exceeded" {
		t.Errorf("String: %q", got)
	}
}

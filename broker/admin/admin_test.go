package admin_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fleetmq/fleetmq/broker/admin"
	"github.com/fleetmq/fleetmq/broker/authz"
)

// apiBundle is a small valid bundle: users alice and bob, each allowed to
// publish and subscribe under devices/<name>/#.
func apiBundle(t testing.TB, rev int64) authz.Bundle {
	return authz.Bundle{
		APIVersion: authz.APIVersion,
		Revision:   rev,
		Users:      []authz.User{user(t, "alice"), user(t, "bob")},
		Rules:      []authz.Rule{rule(authz.EffectAllow, []string{"alice", "bob"}, pubSub, "devices/%u/#")},
	}
}

func TestHealthz(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, tc := range []struct {
		name   string
		before bool // before any bundle
	}{{"before bundle", true}, {"after bundle", false}} {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.before {
				e.apply(t, apiBundle(t, 1))
			}
			if code, body := e.do(t, http.MethodGet, "/healthz", "", nil); code != http.StatusOK {
				t.Errorf("GET /healthz: got %d %s, want 200", code, body)
			}
		})
	}
}

func TestReadyz(t *testing.T) {
	t.Run("no bundle, anonymous off", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		if code, body := e.do(t, http.MethodGet, "/readyz", "", nil); code != http.StatusServiceUnavailable {
			t.Errorf("GET /readyz: got %d %s, want 503", code, body)
		}
		e.apply(t, apiBundle(t, 1))
		if code, body := e.do(t, http.MethodGet, "/readyz", "", nil); code != http.StatusOK {
			t.Errorf("GET /readyz after a bundle: got %d %s, want 200", code, body)
		}
	})
	t.Run("no bundle, anonymous on", func(t *testing.T) {
		e := newEnv(t, envOptions{allowAnonymous: true})
		if code, body := e.do(t, http.MethodGet, "/readyz", "", nil); code != http.StatusOK {
			t.Errorf("GET /readyz: got %d %s, want 200", code, body)
		}
	})
	t.Run("bad bundle does not make it ready", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		if code, _ := e.put(t, []byte(`{"apiVersion":"nope"}`), ""); code != http.StatusBadRequest {
			t.Fatalf("PUT bad bundle: got %d, want 400", code)
		}
		if code, body := e.do(t, http.MethodGet, "/readyz", "", nil); code != http.StatusServiceUnavailable {
			t.Errorf("GET /readyz: got %d %s, want 503", code, body)
		}
	})
}

func TestAuthRequired(t *testing.T) {
	e := newEnv(t, envOptions{})
	noToken := newEnv(t, envOptions{noTokenFile: true})
	valid := encode(t, apiBundle(t, 1))
	endpoints := []struct {
		method, path string
		body         []byte
	}{
		{http.MethodGet, "/v1/auth", nil},
		{http.MethodPut, "/v1/auth", valid},
		{http.MethodPut, "/v1/auth?force=true", valid},
		{http.MethodGet, "/metrics", nil},
	}
	for _, ep := range endpoints {
		for _, tc := range []struct {
			name   string
			env    *env
			header string // Authorization header; "" none
		}{
			{"no header", e, ""},
			{"wrong token", e, "Bearer wrong"},
			{"token prefix", e, "Bearer s3cret"},
			{"token with suffix", e, "Bearer s3cret-token2"},
			{"empty bearer", e, "Bearer "},
			{"basic scheme", e, "Basic czNjcmV0LXRva2Vu"},
			{"raw token", e, "s3cret-token"},
			{"no token file, empty bearer", noToken, "Bearer "},
			{"no token file, some token", noToken, "Bearer s3cret-token"},
		} {
			t.Run(ep.method+" "+ep.path+"/"+tc.name, func(t *testing.T) {
				req, err := http.NewRequest(ep.method, tc.env.api.URL+ep.path, bytes.NewReader(ep.body))
				if err != nil {
					t.Fatal(err)
				}
				if tc.header != "" {
					req.Header.Set("Authorization", tc.header)
				}
				resp, err := tc.env.api.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("got %d, want 401", resp.StatusCode)
				}
				if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
					t.Errorf("WWW-Authenticate: got %q, want a Bearer challenge", got)
				}
			})
		}
	}
	t.Run("nothing was applied", func(t *testing.T) {
		for _, x := range []*env{e, noToken} {
			if a, ok := x.loader.Current(); ok {
				t.Errorf("got revision %d in force, want none: unauthenticated PUTs must not apply", a.Revision)
			}
		}
	})
	t.Run("health needs no token", func(t *testing.T) {
		for _, path := range []string{"/healthz"} {
			if code, _ := noToken.do(t, http.MethodGet, path, "", nil); code != http.StatusOK {
				t.Errorf("GET %s: got %d, want 200", path, code)
			}
		}
	})
}

// putResult decodes a PUT answer.
type putResult struct {
	admin.Applied
	Error   string        `json:"error"`
	Details []string      `json:"details"`
	Current admin.Applied `json:"current"`
}

func decodePut(t testing.TB, body []byte) putResult {
	t.Helper()
	if leaksHash(body) {
		t.Fatalf("PUT answer leaks a password hash: %s", body)
	}
	var r putResult
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("decode PUT answer %s: %v", body, err)
	}
	return r
}

// TestPutAuth walks one broker through the revision rules; each step
// depends on the previous one.
func TestPutAuth(t *testing.T) {
	e := newEnv(t, envOptions{})

	rev5 := apiBundle(t, 5)
	var applied5 admin.Applied
	t.Run("apply", func(t *testing.T) {
		code, body := e.put(t, encode(t, rev5), "")
		if code != http.StatusOK {
			t.Fatalf("PUT revision 5: got %d %s, want 200", code, body)
		}
		r := decodePut(t, body)
		if r.Revision != 5 || !strings.HasPrefix(r.Hash, "sha256:") {
			t.Errorf("PUT answer: got revision %d hash %q, want 5 and a sha256 hash", r.Revision, r.Hash)
		}
		if want := rev5.Hash(); r.Hash != want {
			t.Errorf("PUT answer hash: got %s, want %s (Bundle.Hash)", r.Hash, want)
		}
		applied5 = r.Applied
	})
	t.Run("get", func(t *testing.T) {
		a := e.current(t)
		if a.Revision != 5 || a.Hash != applied5.Hash || a.Users != 2 || a.Rules != 1 || a.Source != "api" {
			t.Errorf("GET: got %+v, want revision 5, hash %s, 2 users, 1 rule, source api", a, applied5.Hash)
		}
		if a.AppliedAt.IsZero() {
			t.Errorf("GET: appliedAt is zero")
		}
	})
	t.Run("lower revision is refused", func(t *testing.T) {
		older := apiBundle(t, 3)
		older.Users = older.Users[:1]
		code, body := e.put(t, encode(t, older), "")
		if code != http.StatusConflict {
			t.Fatalf("PUT revision 3: got %d %s, want 409", code, body)
		}
		if r := decodePut(t, body); r.Current.Revision != 5 {
			t.Errorf("409 answer: got current revision %d, want 5", r.Current.Revision)
		}
		if a := e.current(t); a.Revision != 5 || a.Users != 2 {
			t.Errorf("after 409: got revision %d with %d users, want 5 with 2", a.Revision, a.Users)
		}
	})
	t.Run("same revision, same content is a no-op", func(t *testing.T) {
		// Users in another order: the hash ignores order.
		same := apiBundle(t, 5)
		same.Users[0], same.Users[1] = same.Users[1], same.Users[0]
		before := metric(t, e.metrics, "fleetmq_auth_reloads_total", "applied")
		code, body := e.put(t, encode(t, same), "")
		if code != http.StatusOK {
			t.Fatalf("PUT same revision 5: got %d %s, want 200", code, body)
		}
		r := decodePut(t, body)
		if r.Revision != 5 || !r.AppliedAt.Equal(applied5.AppliedAt) {
			t.Errorf("no-op answer: got revision %d applied at %v, want 5 applied at %v (unchanged)", r.Revision, r.AppliedAt, applied5.AppliedAt)
		}
		if got := metric(t, e.metrics, "fleetmq_auth_reloads_total", "applied"); got != before {
			t.Errorf("applied reloads: got %v, want %v (no-op)", got, before)
		}
		if got := metric(t, e.metrics, "fleetmq_auth_reloads_total", "unchanged"); got != 1 {
			t.Errorf("unchanged reloads: got %v, want 1", got)
		}
	})
	t.Run("same revision, other content is refused", func(t *testing.T) {
		other := apiBundle(t, 5)
		other.AllowAnonymous = true
		code, body := e.put(t, encode(t, other), "")
		if code != http.StatusConflict {
			t.Fatalf("PUT revision 5 with other content: got %d %s, want 409", code, body)
		}
		if a := e.current(t); a.Hash != applied5.Hash || a.AllowAnonymous {
			t.Errorf("after 409: got hash %s anonymous %v, want %s false", a.Hash, a.AllowAnonymous, applied5.Hash)
		}
	})
	t.Run("force accepts a lower revision", func(t *testing.T) {
		older := apiBundle(t, 2)
		older.Users = older.Users[:1] // alice only
		code, body := e.put(t, encode(t, older), "?force=true")
		if code != http.StatusOK {
			t.Fatalf("PUT revision 2 forced: got %d %s, want 200", code, body)
		}
		if a := e.current(t); a.Revision != 2 || a.Users != 1 {
			t.Errorf("after force: got revision %d with %d users, want 2 with 1", a.Revision, a.Users)
		}
		// Bob is gone for real: his credentials no longer work.
		if _, ack, err := dialV5(t, e.addr, v5Opts{id: "bob-1", username: "bob", password: "bob-pw"}); err == nil || ack == nil || ack.ReasonCode != 0x86 {
			t.Errorf("bob after forced rollback: got err %v ack %+v, want CONNACK 0x86", err, ack)
		}
	})
	t.Run("invalid bundle is refused with details", func(t *testing.T) {
		// alice (of revision 2) stays connected through the refused PUTs.
		alice := mustV5(t, e.addr, "alice-1", "alice")
		bad := apiBundle(t, 9)
		bad.Users[1].PasswordHash = "plaintext-password"
		bad.Rules = append(bad.Rules, rule(authz.EffectAllow, []string{"bob"}, pub, "a/#/b"))
		for _, tc := range []struct {
			name string
			body []byte
			want []string // substrings of the details
		}{
			{"bad entries", encode(t, bad), []string{`users[1] "bob": passwordHash`, `rules[1].topics[0] "a/#/b"`}},
			{"unknown field", []byte(`{"apiVersion":"authz.fleetmq.io/v1","revision":9,"userz":[]}`), []string{`"userz"`}},
			{"not JSON", []byte(`revision: 9`), []string{"parse auth bundle"}},
			{"wrong apiVersion", []byte(`{"apiVersion":"v0","revision":9}`), []string{`apiVersion "v0"`}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, body := e.put(t, tc.body, "")
				if code != http.StatusBadRequest {
					t.Fatalf("PUT: got %d %s, want 400", code, body)
				}
				r := decodePut(t, body)
				all := strings.Join(r.Details, "\n")
				for _, w := range tc.want {
					if !strings.Contains(all, w) {
						t.Errorf("details: got %q, want them to mention %q", r.Details, w)
					}
				}
				if a := e.current(t); a.Revision != 2 {
					t.Errorf("after 400: got revision %d, want 2 in force", a.Revision)
				}
			})
		}
		// The old bundle is still in force: its user can still connect, and
		// the one connected before was not disturbed.
		mustV5(t, e.addr, "alice-2", "alice")
		alice.expectAlive(t)
		if got := metric(t, e.metrics, "fleetmq_auth_reloads_total", "invalid"); got != 4 {
			t.Errorf("invalid reloads: got %v, want 4", got)
		}
	})
}

func TestPutAuthTooLarge(t *testing.T) {
	const limit = 4096
	e := newEnv(t, envOptions{maxBodyBytes: limit})
	e.apply(t, apiBundle(t, 1))
	big := apiBundle(t, 2)
	for i := 0; len(encode(t, big)) <= limit; i++ {
		big.Rules = append(big.Rules, rule(authz.EffectAllow, []string{"alice"}, pub, strings.Repeat("x", 100)))
	}
	code, body := e.put(t, encode(t, big), "")
	if code != http.StatusRequestEntityTooLarge {
		t.Fatalf("PUT %d-byte body with limit %d: got %d %s, want 413", len(encode(t, big)), limit, code, body)
	}
	if a := e.current(t); a.Revision != 1 {
		t.Errorf("after 413: got revision %d, want 1 in force", a.Revision)
	}
	// Just under the limit is fine.
	small := apiBundle(t, 3)
	if code, body := e.put(t, encode(t, small), ""); code != http.StatusOK {
		t.Errorf("PUT small bundle: got %d %s, want 200", code, body)
	}
}

func TestGetAuthBeforeBundle(t *testing.T) {
	e := newEnv(t, envOptions{})
	code, body := e.do(t, http.MethodGet, "/v1/auth", e.token, nil)
	if code != http.StatusOK {
		t.Fatalf("GET /v1/auth: got %d %s, want 200", code, body)
	}
	var got struct {
		Revision int64 `json:"revision"`
		Loaded   *bool `json:"loaded"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Revision != 0 || got.Loaded == nil || *got.Loaded {
		t.Errorf("GET before a bundle: got %s, want revision 0, loaded false", body)
	}
}

func TestMetricsEndpoint(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.apply(t, apiBundle(t, 7))
	alice := mustV5(t, e.addr, "alice-1", "alice")
	if code := alice.publish(t, "devices/bob/x", "nope"); code != 0x87 {
		t.Fatalf("denied publish: got PUBACK 0x%02x, want 0x87", code)
	}
	if code := alice.subscribe(t, "devices/#", 1).Reasons[0]; code != 0x87 {
		t.Fatalf("denied subscribe: got SUBACK 0x%02x, want 0x87", code)
	}
	if _, _, err := dialV5(t, e.addr, v5Opts{id: "x", username: "alice", password: "wrong"}); err == nil {
		t.Fatalf("wrong password connected")
	}

	code, body := e.do(t, http.MethodGet, "/metrics", e.token, nil)
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: got %d, want 200", code)
	}
	text := string(body)
	for _, want := range []string{
		"fleetmq_auth_revision 7",
		"fleetmq_clients_connected 1",
		`fleetmq_acl_denials_total{action="publish"} 1`,
		`fleetmq_acl_denials_total{action="subscribe"} 1`,
		`fleetmq_acl_denials_total{action="deliver"} 0`,
		"fleetmq_auth_failures_total 1",
		`fleetmq_auth_reloads_total{result="applied"} 1`,
		"fleetmq_auth_reload_duration_seconds_count 1",
		"fleetmq_sessions_revoked_total 0",
		"fleetmq_clients_unauthenticated ",
		`fleetmq_preconnect_closed_total{reason="limit"} 0`,
		"fleetmq_connections_total ",
		"fleetmq_subscriptions ",
		"go_goroutines ",
	} {
		if !strings.Contains(text, "\n"+want) {
			t.Errorf("/metrics: no line starting %q", want)
		}
	}
	if leaksHash(body) {
		t.Errorf("/metrics leaks a password hash")
	}
}

// TestTokenRotation replaces the token file (as a rotated Secret does) and
// expects the new token to be accepted and the old one refused, without a
// restart.
func TestTokenRotation(t *testing.T) {
	e := newEnv(t, envOptions{})
	if code, _ := e.do(t, http.MethodGet, "/v1/auth", "s3cret-token", nil); code != http.StatusOK {
		t.Fatalf("old token before rotation: got %d, want 200", code)
	}
	writeFile(t, e.tokenFile, "  rotated-token\n")
	// The handler re-reads the file at most once a second, on a mismatch.
	deadline := time.Now().Add(timeout)
	for {
		code, _ := e.do(t, http.MethodGet, "/v1/auth", "rotated-token", nil)
		if code == http.StatusOK {
			break
		}
		if code != http.StatusUnauthorized || time.Now().After(deadline) {
			t.Fatalf("new token: got %d, want 200 within %v", code, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, _ := e.do(t, http.MethodGet, "/v1/auth", "s3cret-token", nil); code != http.StatusUnauthorized {
		t.Errorf("old token after rotation: got %d, want 401", code)
	}
}

func TestNewHandlerMissingTokenFile(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, content := range []string{"", "  \n"} {
		path := t.TempDir() + "/token"
		if content != "" {
			writeFile(t, path, content)
		}
		if _, err := admin.NewHandler(admin.HandlerOptions{Loader: e.loader, TokenFile: path}); err == nil {
			t.Errorf("NewHandler with token file content %q: got nil error, want one", content)
		}
	}
}

package authsync

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleetmq/fleetmq/broker"
	"github.com/fleetmq/fleetmq/broker/admin"
)

// timeout bounds every request of these tests.
const timeout = 5 * time.Second

const testToken = "s3cret-admin-token"

// realBroker is a real broker's admin API (Loader and Handler of
// broker/admin) on loopback; addr is host:port.
func realBroker(t *testing.T) (addr string) {
	t.Helper()
	srv, err := broker.New(broker.Options{SysInterval: -1})
	if err != nil {
		t.Fatalf("broker.New: %v", err)
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h, err := admin.NewHandler(admin.HandlerOptions{Loader: admin.NewLoader(srv, nil, nil), TokenFile: tokenFile})
	if err != nil {
		t.Fatalf("admin.NewHandler: %v", err)
	}
	api := httptest.NewServer(h)
	t.Cleanup(func() {
		api.Close()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("broker shutdown: %v", err)
		}
	})
	return strings.TrimPrefix(api.URL, "http://")
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return ctx
}

// compiled returns the fixture's bundle at revision rev.
func compiled(t *testing.T, rev int64, mods ...func(*Input)) []byte {
	t.Helper()
	in := fixture()
	in.HashPassword = (&hasher{}).hash
	for _, m := range mods {
		m(&in)
	}
	if rev > 1 {
		in.Previous = &State{Revision: rev - 1, Hash: "other"}
	}
	res := mustCompile(t, in)
	if res.Bundle.Revision != rev {
		t.Fatalf("compiled revision %d, want %d", res.Bundle.Revision, rev)
	}
	return res.BundleJSON
}

func TestHTTPClientRealBroker(t *testing.T) {
	addr := realBroker(t)
	c := &HTTPClient{Token: testToken}

	got, err := c.GetAuth(ctxT(t), addr)
	if err != nil {
		t.Fatalf("GetAuth before any bundle: %v", err)
	}
	if got.Revision != 0 || got.HasBundle() {
		t.Errorf("GetAuth before any bundle: got %+v, want revision 0, not loaded", got)
	}

	in := fixture()
	in.HashPassword = (&hasher{}).hash
	res := mustCompile(t, in)
	for _, step := range []string{"first push", "same bundle again (no-op)"} {
		t.Run(step, func(t *testing.T) {
			a, err := c.PutAuth(ctxT(t), addr, res.BundleJSON)
			if err != nil {
				t.Fatalf("PutAuth: %v", err)
			}
			if a.Revision != 1 || a.Hash != res.State.Hash || a.AppliedAt.IsZero() {
				t.Errorf("PutAuth: got %+v, want revision 1, hash %s, appliedAt set", a, res.State.Hash)
			}
			g, err := c.GetAuth(ctxT(t), addr)
			if err != nil {
				t.Fatalf("GetAuth: %v", err)
			}
			if g.Revision != 1 || g.Hash != res.State.Hash || !g.HasBundle() {
				t.Errorf("GetAuth: got %+v, want revision 1, hash %s, loaded", g, res.State.Hash)
			}
		})
	}

	t.Run("newer revision", func(t *testing.T) {
		in := fixture()
		in.HashPassword = (&hasher{}).hash
		in.Previous = res.State
		in.Broker.Spec.AllowAnonymous = true
		next := mustCompile(t, in)
		a, err := c.PutAuth(ctxT(t), addr, next.BundleJSON)
		if err != nil || a.Revision != 2 || a.Hash != next.State.Hash {
			t.Fatalf("PutAuth revision 2: got %+v, %v; want revision 2, hash %s", a, err, next.State.Hash)
		}
	})

	t.Run("stale revision", func(t *testing.T) {
		a, err := c.PutAuth(ctxT(t), addr, res.BundleJSON)
		if !errors.Is(err, ErrStale) {
			t.Fatalf("PutAuth revision 1 over 2: got %v, want ErrStale", err)
		}
		var se *StaleError
		if !errors.As(err, &se) || se.Current.Revision != 2 || a.Revision != 2 {
			t.Errorf("got %#v and Applied %+v, want a *StaleError and Applied at revision 2", err, a)
		}
		if !strings.Contains(err.Error(), "revision 2") {
			t.Errorf("got error %q, want it to name the broker's revision 2", err)
		}
	})

	t.Run("same revision, other content", func(t *testing.T) {
		other := compiled(t, 2, func(in *Input) { in.Users = in.Users[:1] })
		if _, err := c.PutAuth(ctxT(t), addr, other); !errors.Is(err, ErrStale) {
			t.Errorf("got %v, want ErrStale", err)
		}
	})

	t.Run("invalid bundle", func(t *testing.T) {
		bad := []byte(`{"apiVersion":"authz.fleetmq.io/v1","revision":9,"allowAnonymous":false,"users":[],` +
			`"rules":[{"subjects":{"users":["alice"]},"topics":["a/#/b"],"actions":["publish"],"effect":"allow"}]}`)
		_, err := c.PutAuth(ctxT(t), addr, bad)
		var se *StatusError
		if !errors.As(err, &se) || se.StatusCode != http.StatusBadRequest {
			t.Fatalf("got %v, want a *StatusError with 400", err)
		}
		for _, want := range []string{"400", "invalid auth bundle", `rules[0].topics[0] "a/#/b": '#' must be the last level`} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("got error %q, want it to contain %q", err, want)
			}
		}
		if errors.Is(err, ErrStale) {
			t.Errorf("a 400 matches ErrStale")
		}
	})

	t.Run("wrong token", func(t *testing.T) {
		for name, call := range map[string]func(*HTTPClient) error{
			"GET": func(c *HTTPClient) error { _, err := c.GetAuth(ctxT(t), addr); return err },
			"PUT": func(c *HTTPClient) error { _, err := c.PutAuth(ctxT(t), addr, res.BundleJSON); return err },
		} {
			err := call(&HTTPClient{Token: "wrong"})
			if err == nil || !strings.Contains(err.Error(), "401") {
				t.Errorf("%s with a wrong token: got %v, want an error mentioning 401", name, err)
			}
			if err != nil && strings.Contains(err.Error(), "wrong") && !strings.Contains(err.Error(), "wrong bearer token") {
				t.Errorf("%s: error %q echoes the token", name, err)
			}
		}
		if _, err := (&HTTPClient{}).GetAuth(ctxT(t), addr); err == nil {
			t.Errorf("GetAuth without a token: got no error, want one")
		}
	})

	t.Run("broker answers with what the operator compiled", func(t *testing.T) {
		g, err := c.GetAuth(ctxT(t), addr)
		if err != nil || g.Revision != 2 {
			t.Errorf("GetAuth: got %+v, %v; want revision 2", g, err)
		}
	})
}

func TestHTTPClientTransport(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		ctx     func() (context.Context, context.CancelFunc)
		check   func(t *testing.T, err error)
	}{
		{
			name: "timeout from the context",
			handler: func(w http.ResponseWriter, r *http.Request) {
				// The server notices the client hanging up only once the
				// body is read.
				io.Copy(io.Discard, r.Body)
				select {
				case <-r.Context().Done():
				case <-time.After(timeout):
				}
			},
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 50*time.Millisecond)
			},
			check: func(t *testing.T, err error) {
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("got %v, want context.DeadlineExceeded", err)
				}
			},
		},
		{
			name: "long error body is trimmed",
			handler: func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, strings.Repeat("x", 100_000), http.StatusInternalServerError)
			},
			check: func(t *testing.T, err error) {
				var se *StatusError
				if !errors.As(err, &se) || se.StatusCode != 500 {
					t.Fatalf("got %v, want a *StatusError with 500", err)
				}
				if n := len(err.Error()); n > maxErrorBodyLen+200 {
					t.Errorf("got an error of %d bytes, want at most ~%d", n, maxErrorBodyLen)
				}
				if !strings.Contains(err.Error(), "more bytes") {
					t.Errorf("got %q, want it to say the body was trimmed", err.Error()[:100])
				}
			},
		},
		{
			name: "2xx that is not JSON",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Write([]byte("<html>proxy</html>"))
			},
			check: func(t *testing.T, err error) {
				if err == nil || !strings.Contains(err.Error(), "decode answer") {
					t.Errorf("got %v, want a decode error", err)
				}
			},
		},
		{
			name: "request carries the bearer token",
			handler: func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != "Bearer "+testToken || r.URL.Path != "/v1/auth" || r.Method != http.MethodPut ||
					r.Header.Get("Content-Type") != "application/json" {
					http.Error(w, "unexpected request "+r.Method+" "+r.URL.Path, http.StatusTeapot)
					return
				}
				w.Write([]byte(`{"revision":7,"hash":"sha256:x","appliedAt":"2026-01-02T03:04:05Z","users":1}`))
			},
			check: func(t *testing.T, err error) {
				if err != nil {
					t.Errorf("got %v, want no error", err)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			if tc.ctx != nil {
				cancel()
				ctx, cancel = tc.ctx()
			}
			defer cancel()
			c := &HTTPClient{Token: testToken, HTTP: srv.Client()}
			_, err := c.PutAuth(ctx, strings.TrimPrefix(srv.URL, "http://"), []byte(`{}`))
			tc.check(t, err)
		})
	}
}

func TestHTTPClientURL(t *testing.T) {
	for _, tc := range []struct {
		scheme, addr, want string
	}{
		{"", "10.0.0.5:8081", "http://10.0.0.5:8081/v1/auth"},
		{"https", "broker-0.b1.tenant-a.svc:8081", "https://broker-0.b1.tenant-a.svc:8081/v1/auth"},
		{"", "[fd00::1]:8081", "http://[fd00::1]:8081/v1/auth"},
		{"https", "http://127.0.0.1:9/", "http://127.0.0.1:9/v1/auth"},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			if got := (&HTTPClient{Scheme: tc.scheme}).url(tc.addr); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

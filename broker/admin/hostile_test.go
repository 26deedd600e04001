package admin_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleetmq/fleetmq/broker/admin"
)

// short stands in for the admin server's timeouts in these tests, so a
// timeout fires long before the test's own bound (timeout) runs out.
const short = 100 * time.Millisecond

// dialAPI opens a raw connection to e's admin API.
func dialAPI(t *testing.T, e *env) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", e.api.Listener.Addr().String(), timeout)
	if err != nil {
		t.Fatalf("dial admin API: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// expectClosedByServer reads from r until the server closes the
// connection (EOF, or a reset when the server closed with our bytes still
// unread) and fails if it is still open after timeout. Anything read
// before is returned.
func expectClosedByServer(t *testing.T, conn net.Conn, r io.Reader) []byte {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	switch {
	case err == nil, errors.Is(err, syscall.ECONNRESET):
		return got
	case errors.Is(err, os.ErrDeadlineExceeded):
		t.Fatalf("connection still open after %v (read %q), want it closed by the server", timeout, got)
	default:
		t.Fatalf("read: %v, want EOF", err)
	}
	return nil
}

// TestAdminIdleConnectionClosed: a keep-alive connection that sends no
// further request is closed by the server after IdleTimeout.
func TestAdminIdleConnectionClosed(t *testing.T) {
	e := newEnv(t, envOptions{server: admin.ServerOptions{IdleTimeout: short}})
	conn := dialAPI(t, e)
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: admin\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	conn.SetReadDeadline(time.Now().Add(timeout))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("GET /healthz: got %d (close %v), want 200 on a kept-alive connection", resp.StatusCode, resp.Close)
	}
	if got := expectClosedByServer(t, conn, br); len(got) > 0 {
		t.Errorf("idle connection: got %q before the close, want nothing", got)
	}
	// Closing an idle keep-alive connection turns nobody away.
	for _, r := range []string{"unauthorized", "too_large", "timeout", "bad_request"} {
		if got := metric(t, e.metrics, "fleetmq_admin_refused_total", r); got != 0 {
			t.Errorf("fleetmq_admin_refused_total{reason=%q} after an idle close: got %v, want 0", r, got)
		}
	}
}

// TestAdminSlowHeaders: a client that does not finish its headers within
// ReadHeaderTimeout is cut off, whether it sends nothing, stops half-way
// or keeps trickling header lines.
func TestAdminSlowHeaders(t *testing.T) {
	e := newEnv(t, envOptions{server: admin.ServerOptions{ReadHeaderTimeout: short}})
	for _, tc := range []struct {
		name    string
		send    string // at once
		trickle bool   // then one more header line every 10 ms
	}{
		{name: "silent"},
		{name: "unfinished", send: "GET /healthz HTTP/1.1\r\nHost: admin\r\n"},
		{name: "trickled", send: "GET /healthz HTTP/1.1\r\nHost: admin\r\n", trickle: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := dialAPI(t, e)
			if _, err := io.WriteString(conn, tc.send); err != nil {
				t.Fatal(err)
			}
			if tc.trickle {
				done := make(chan struct{})
				defer close(done)
				go func() {
					tk := time.NewTicker(10 * time.Millisecond)
					defer tk.Stop()
					for i := 0; ; i++ {
						select {
						case <-done:
							return
						case <-tk.C:
						}
						if _, err := fmt.Fprintf(conn, "X-Slow-%d: 1\r\n", i); err != nil {
							return // closed by the server
						}
					}
				}()
			}
			if got := expectClosedByServer(t, conn, conn); len(got) > 0 {
				t.Errorf("got %q before the close, want nothing", got)
			}
		})
	}
	expectRefused(t, e, "timeout", 3)
}

// expectRefused waits until fleetmq_admin_refused_total{reason} is want:
// net/http reports a closed connection after the client sees it closed.
func expectRefused(t *testing.T, e *env, reason string, want float64) {
	t.Helper()
	eventually(t, fmt.Sprintf("fleetmq_admin_refused_total{reason=%q} = %v", reason, want), func() bool {
		return metric(t, e.metrics, "fleetmq_admin_refused_total", reason) == want
	})
}

// TestAdminRefusalsCounted: each way the admin API turns a client away is
// counted under its reason, and serving a request is not a refusal.
func TestAdminRefusalsCounted(t *testing.T) {
	e := newEnv(t, envOptions{maxBodyBytes: 1 << 10, server: admin.ServerOptions{ReadTimeout: short}})
	if code, _ := e.do(t, http.MethodGet, "/v1/auth", e.token, nil); code != http.StatusOK {
		t.Fatalf("GET /v1/auth with the token: got %d, want 200", code)
	}

	if code, _ := e.do(t, http.MethodGet, "/v1/auth", "wrong", nil); code != http.StatusUnauthorized {
		t.Errorf("wrong token: got %d, want 401", code)
	}
	expectRefused(t, e, "unauthorized", 1)

	if code, _ := e.put(t, []byte(strings.Repeat("x", 2<<10)), ""); code != http.StatusRequestEntityTooLarge {
		t.Errorf("2 KiB body over a 1 KiB limit: got %d, want 413", code)
	}
	expectRefused(t, e, "too_large", 1)

	conn := dialAPI(t, e)
	if _, err := io.WriteString(conn, "NOT HTTP AT ALL\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	expectClosedByServer(t, conn, conn)
	expectRefused(t, e, "bad_request", 1)

	// A body that stops half-way runs into ReadTimeout.
	slow := dialAPI(t, e)
	if _, err := fmt.Fprintf(slow, "PUT /v1/auth HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer %s\r\nContent-Length: 100\r\n\r\n{", e.token); err != nil {
		t.Fatal(err)
	}
	slow.SetReadDeadline(time.Now().Add(timeout))
	resp, err := http.ReadResponse(bufio.NewReader(slow), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("unfinished body: got %d, want 408", resp.StatusCode)
	}
	expectRefused(t, e, "timeout", 1)

	for _, r := range []string{"unauthorized", "too_large", "bad_request"} {
		if got := metric(t, e.metrics, "fleetmq_admin_refused_total", r); got != 1 {
			t.Errorf("fleetmq_admin_refused_total{reason=%q} at the end: got %v, want 1", r, got)
		}
	}
}

// TestAdminHeaderTooLarge: headers over DefaultMaxHeaderBytes are refused
// with 431 (net/http's own default would take 1 MiB); a long token's worth
// still passes.
func TestAdminHeaderTooLarge(t *testing.T) {
	e := newEnv(t, envOptions{})
	t.Run("oversized header gets 431", func(t *testing.T) {
		conn := dialAPI(t, e)
		big := strings.Repeat("a", 2*admin.DefaultMaxHeaderBytes)
		if _, err := fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: admin\r\nX-Big: %s\r\n\r\n", big); err != nil {
			t.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(timeout))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("read response: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("got %d, want 431", resp.StatusCode)
		}
		expectRefused(t, e, "too_large", 1)
	})
	t.Run("8 KiB header passes", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodGet, e.api.URL+"/healthz", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Big", strings.Repeat("a", 8<<10))
		resp, err := e.api.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("got %d, want 200", resp.StatusCode)
		}
	})
}

// TestTokenMatches: only the token itself matches, whatever the length of
// a wrong one. (That the comparison takes the same time is not something a
// test can show; tokenMatches compares SHA-256 digests for that.)
func TestTokenMatches(t *testing.T) {
	const token = "s3cret-token"
	for _, tc := range []struct {
		name, got string
		want      bool
	}{
		{"the token", token, true},
		{"empty", "", false},
		{"one byte", "s", false},
		{"prefix", token[:len(token)-1], false},
		{"same length, last byte differs", token[:len(token)-1] + "X", false},
		{"token plus one byte", token + "x", false},
		{"token with a newline", token + "\n", false},
		{"4 KiB", strings.Repeat(token, 4096/len(token)+1), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := admin.TokenMatches(tc.got, token); got != tc.want {
				t.Errorf("TokenMatches(%q): got %v, want %v", tc.got, got, tc.want)
			}
		})
	}
	t.Run("through the API", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		for _, tc := range []struct {
			tok  string
			want int
		}{
			{"s", http.StatusUnauthorized},
			{e.token[:len(e.token)-1], http.StatusUnauthorized},
			{e.token[:len(e.token)-1] + "X", http.StatusUnauthorized},
			{e.token + "x", http.StatusUnauthorized},
			{strings.Repeat("x", 4096), http.StatusUnauthorized},
			{e.token, http.StatusOK},
		} {
			if code, body := e.do(t, http.MethodGet, "/v1/auth", tc.tok, nil); code != tc.want {
				t.Errorf("token of %d bytes: got %d %s, want %d", len(tc.tok), code, body, tc.want)
			}
		}
	})
}

// reloadsTotal sums fleetmq_auth_reloads_total over its results: every
// bundle the Loader parsed.
func reloadsTotal(t *testing.T, m *admin.Metrics) float64 {
	t.Helper()
	var n float64
	for _, result := range []string{"applied", "unchanged", "stale", "invalid"} {
		n += metric(t, m, "fleetmq_auth_reloads_total", result)
	}
	return n
}

// TestAuthFileWatchSkipsUnchanged: the watcher sees every event in the
// auth file's directory, but only a changed bundle is parsed and applied;
// an unrelated file, or the same bundle written again, costs nothing.
func TestAuthFileWatchSkipsUnchanged(t *testing.T) {
	for _, layout := range []struct {
		name string
		// setup returns the path to load and how to (re)write the bundle.
		setup func(t *testing.T) (string, func(data []byte))
	}{
		{"plain file", func(t *testing.T) (string, func([]byte)) {
			path := filepath.Join(t.TempDir(), "bundle.json")
			return path, func(data []byte) { writeFile(t, path, string(data)) }
		}},
		{"Secret volume", func(t *testing.T) (string, func([]byte)) {
			sd := &secretDir{dir: t.TempDir()}
			return filepath.Join(sd.dir, "bundle.json"), func(data []byte) {
				sd.update(t, map[string][]byte{"bundle.json": data})
			}
		}},
	} {
		t.Run(layout.name, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			path, write := layout.setup(t)
			rev1 := encode(t, apiBundle(t, 1))
			write(rev1)
			if _, err := e.loader.LoadFile(path); err != nil {
				t.Fatalf("LoadFile: %v", err)
			}
			checked := make(chan bool, 100)
			e.loader.OnFileChecked(func(changed bool) { checked <- changed })
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			if err := e.loader.WatchFile(ctx, path); err != nil {
				t.Fatalf("WatchFile: %v", err)
			}
			before := reloadsTotal(t, e.metrics)
			in, _ := e.loader.Current()

			unchanged := func(t *testing.T, what string) {
				t.Helper()
				changed := receive(t, checked) // the watcher has looked
				if got := reloadsTotal(t, e.metrics); got != before {
					t.Errorf("%s: fleetmq_auth_reloads_total went from %v to %v, want no reload", what, before, got)
				}
				if a, _ := e.loader.Current(); a != in {
					t.Errorf("%s: in force %+v, want still %+v", what, a, in)
				}
				if changed {
					t.Errorf("%s: the watcher took the bundle for a changed one", what)
				}
			}
			t.Run("unrelated file", func(t *testing.T) {
				writeFile(t, filepath.Join(filepath.Dir(path), "unrelated.txt"), "not a bundle")
				unchanged(t, "unrelated file")
			})
			t.Run("same bytes again", func(t *testing.T) {
				write(rev1)
				unchanged(t, "same bundle rewritten")
			})
			t.Run("changed bundle reloads", func(t *testing.T) {
				write(encode(t, apiBundle(t, 2)))
				eventually(t, "revision 2 from the file", func() bool { a, _ := e.loader.Current(); return a.Revision == 2 })
				if got := metric(t, e.metrics, "fleetmq_auth_reloads_total", "applied"); got != 2 {
					t.Errorf("applied reloads: got %v, want 2 (start-up and the change)", got)
				}
			})
		})
	}
}

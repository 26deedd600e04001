package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DefaultMaxBodyBytes bounds a PUT /v1/auth body: a bundle of 10,000 users
// and 50,000 rules is about 10 MB.
const DefaultMaxBodyBytes = 64 << 20

// HandlerOptions configure the admin API.
type HandlerOptions struct {
	Loader  *Loader
	Metrics *Metrics
	// TokenFile holds the bearer token. Without it every endpoint except
	// /healthz and /readyz answers 401: the API is never open.
	TokenFile string
	// MetricsTokenFile holds a second token that reads /metrics and
	// nothing else (Prometheus's), so a scraper cannot write auth.
	// The admin token reads /metrics too.
	MetricsTokenFile string
	// AllowAnonymous makes the broker ready without a bundle.
	AllowAnonymous bool
	MaxBodyBytes   int64
	Log            *slog.Logger
}

// NewHandler returns the admin API:
//
//	GET /healthz      200 while the process serves
//	GET /readyz       200 once a bundle is loaded (or anonymous access is on)
//	GET /v1/auth      the bundle in force (revision, hash, counts; never hashes)
//	PUT /v1/auth      apply a bundle (?force=true accepts a lower revision)
//	GET /metrics      Prometheus metrics
//
// All but /healthz and /readyz need "Authorization: Bearer <token>".
func NewHandler(o HandlerOptions) (http.Handler, error) {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	tok := &tokenSource{path: o.TokenFile}
	if o.TokenFile != "" {
		if err := tok.reload(); err != nil {
			return nil, fmt.Errorf("admin %w", err)
		}
	}
	h := &handler{o: o, token: tok, metricsToken: &tokenSource{path: o.MetricsTokenFile}}
	if o.MetricsTokenFile != "" {
		if err := h.metricsToken.reload(); err != nil {
			return nil, fmt.Errorf("metrics %w", err)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", h.ready)
	mux.Handle("GET /v1/auth", h.authenticated(http.HandlerFunc(h.getAuth), nil))
	mux.Handle("PUT /v1/auth", h.authenticated(http.HandlerFunc(h.putAuth), nil))
	if o.Metrics != nil {
		mux.Handle("GET /metrics", h.authenticated(promhttp.HandlerFor(o.Metrics.Registry, promhttp.HandlerOpts{}), h.metricsToken))
	}
	return mux, nil
}

type handler struct {
	o            HandlerOptions
	token        *tokenSource
	metricsToken *tokenSource // read-only: /metrics only
}

func (h *handler) ready(w http.ResponseWriter, _ *http.Request) {
	if _, ok := h.o.Loader.Current(); ok || h.o.AllowAnonymous {
		io.WriteString(w, "ok\n")
		return
	}
	http.Error(w, "not ready: no auth bundle loaded yet", http.StatusServiceUnavailable)
}

func (h *handler) getAuth(w http.ResponseWriter, _ *http.Request) {
	a, ok := h.o.Loader.Current()
	if !ok {
		writeJSON(w, http.StatusOK, map[string]any{"revision": 0, "loaded": false})
		return
	}
	writeJSON(w, http.StatusOK, a)
}

func (h *handler) putAuth(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, h.o.MaxBodyBytes)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			h.o.Metrics.refused(refusedTooLarge)
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("bundle larger than %d bytes", tooLarge.Limit), nil)
			return
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			h.o.Metrics.refused(refusedTimeout)
			writeError(w, http.StatusRequestTimeout, fmt.Errorf("read body: %w", err), nil)
			return
		}
		writeError(w, http.StatusBadRequest, fmt.Errorf("read body: %w", err), nil)
		return
	}
	force := r.URL.Query().Get("force") == "true"
	a, err := h.o.Loader.Apply(body, "api", force)
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, a)
	case errors.Is(err, ErrStaleRevision):
		writeError(w, http.StatusConflict, err, map[string]any{"current": a})
	case errors.Is(err, ErrInvalidBundle):
		writeError(w, http.StatusBadRequest, errors.New("invalid auth bundle"), map[string]any{"details": details(err)})
	default:
		writeError(w, http.StatusInternalServerError, err, nil)
	}
}

// details splits joined validation errors into one string each.
func details(err error) []string {
	var out []string
	for _, line := range strings.Split(err.Error(), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, strings.TrimPrefix(line, ErrInvalidBundle.Error()+": "))
		}
	}
	return out
}

// authenticated requires the admin bearer token or, when given, also
// accepts extra (the metrics token), compared in constant time.
func (h *handler) authenticated(next http.Handler, extra *tokenSource) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || !(h.token.check(got) || extra != nil && extra.check(got)) {
			h.o.Metrics.refused(refusedUnauthorized)
			w.Header().Set("WWW-Authenticate", `Bearer realm="fleetmq-broker"`)
			writeError(w, http.StatusUnauthorized, errors.New("missing or wrong bearer token"), nil)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// tokenSource holds the admin token and re-reads its file, at most once a
// second, when a presented token does not match, so a rotated Secret takes
// effect without a restart.
type tokenSource struct {
	path string
	// mu guards sum and lastRead.
	mu       sync.Mutex
	sum      [sha256.Size]byte // of the token; the token itself is not kept
	lastRead time.Time
}

func (t *tokenSource) reload() error {
	data, err := os.ReadFile(t.path)
	if err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return fmt.Errorf("token file %s is empty", t.path)
	}
	t.sum = sha256.Sum256([]byte(tok))
	t.lastRead = time.Now()
	return nil
}

func (t *tokenSource) check(got string) bool {
	if t.path == "" || got == "" {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if tokenMatches(got, t.sum) {
		return true
	}
	if time.Since(t.lastRead) < time.Second {
		return false
	}
	if err := t.reload(); err != nil {
		return false
	}
	return tokenMatches(got, t.sum)
}

// tokenMatches reports whether got is the token whose SHA-256 is want. It
// compares digests, which are always the same length, because
// subtle.ConstantTimeCompare answers at once when the lengths differ and
// so would tell a prober how long the token is. Hashing got takes time
// that depends only on got.
func tokenMatches(got string, want [sha256.Size]byte) bool {
	sum := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(sum[:], want[:]) == 1
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error, extra map[string]any) {
	body := map[string]any{"error": err.Error()}
	for k, v := range extra {
		body[k] = v
	}
	writeJSON(w, code, body)
}

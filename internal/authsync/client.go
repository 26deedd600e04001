package authsync

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

const (
	// authPath is the broker's auth endpoint.
	authPath = "/v1/auth"
	// maxResponseBytes bounds how much of an answer is read.
	maxResponseBytes = 1 << 20
	// maxErrorBodyLen bounds the broker's error text kept in an error.
	maxErrorBodyLen = 2048
)

// ErrStale is matched (errors.Is) by the error of a push the broker refused
// because it holds a newer revision, or the same revision with other
// content (409). The error is a *StaleError with the broker's revision.
var ErrStale = errors.New("authsync: broker has a newer revision")

// Applied is what a broker reports (GET/PUT /v1/auth).
type Applied struct {
	Revision  int64     `json:"revision"`
	Hash      string    `json:"hash"`
	AppliedAt time.Time `json:"appliedAt"`
	// Loaded is false when the broker has no bundle yet (GET only; absent
	// otherwise).
	Loaded *bool `json:"loaded,omitempty"`
}

// HasBundle reports whether the broker has a bundle in force.
func (a Applied) HasBundle() bool { return a.Loaded == nil || *a.Loaded }

// Client talks to one broker pod's admin API; a small interface so tests
// can point the operator at a real broker on loopback.
type Client interface {
	// GetAuth returns the bundle in force at addr.
	GetAuth(ctx context.Context, addr string) (Applied, error)
	// PutAuth applies bundle (canonical JSON) at addr.
	PutAuth(ctx context.Context, addr string, bundle []byte) (Applied, error)
}

// StaleError is a 409 from PUT /v1/auth.
type StaleError struct {
	// Addr of the broker.
	Addr string
	// Current is the bundle the broker keeps in force.
	Current Applied
	// Message is the broker's explanation.
	Message string
}

func (e *StaleError) Error() string {
	return fmt.Sprintf("%v: %s is at revision %d (hash %s): %s", ErrStale, e.Addr, e.Current.Revision, e.Current.Hash, e.Message)
}

// Unwrap makes errors.Is(err, ErrStale) hold.
func (e *StaleError) Unwrap() error { return ErrStale }

// StatusError is any other non-2xx answer of the admin API.
type StatusError struct {
	Method, URL string
	StatusCode  int
	// Message is the broker's error with its details (for a 400, each
	// validation problem), trimmed to a sane length.
	Message string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("authsync: %s %s: %d %s: %s", e.Method, e.URL, e.StatusCode, http.StatusText(e.StatusCode), e.Message)
}

// HTTPClient is a Client over HTTP. It does not retry; timeouts come from
// the context.
type HTTPClient struct {
	// Token is the admin API bearer token.
	Token string
	// HTTP sends the requests; nil uses http.DefaultClient.
	HTTP *http.Client
	// Scheme is "http" (default) or "https".
	Scheme string
}

var _ Client = (*HTTPClient)(nil)

// GetAuth returns the bundle in force at addr (host:port).
func (c *HTTPClient) GetAuth(ctx context.Context, addr string) (Applied, error) {
	return c.do(ctx, http.MethodGet, addr, nil)
}

// PutAuth applies bundle at addr (host:port), sent gzip-compressed. A
// broker with a newer revision answers with a *StaleError (errors.Is
// ErrStale).
func (c *HTTPClient) PutAuth(ctx context.Context, addr string, bundle []byte) (Applied, error) {
	return c.do(ctx, http.MethodPut, addr, bundle)
}

func (c *HTTPClient) do(ctx context.Context, method, addr string, body []byte) (Applied, error) {
	if c.Token == "" {
		return Applied{}, fmt.Errorf("authsync: %s %s: no admin token", method, addr)
	}
	url := c.url(addr)
	if c.Scheme == "https" && !strings.HasPrefix(url, "https://") {
		return Applied{}, fmt.Errorf("authsync: %s %s: refusing plain HTTP with a TLS client", method, url)
	}
	var rd io.Reader
	if body != nil {
		z, err := gzipBody(body)
		if err != nil {
			return Applied{}, fmt.Errorf("authsync: %s %s: %w", method, url, err)
		}
		rd = bytes.NewReader(z)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return Applied{}, fmt.Errorf("authsync: %s %s: %w", method, url, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Content-Encoding", "gzip")
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		// *url.Error already names the method and URL.
		return Applied{}, fmt.Errorf("authsync: %w", untrusted(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return Applied{}, fmt.Errorf("authsync: %s %s: read answer (%d): %w", method, url, resp.StatusCode, err)
	}

	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		var a Applied
		if err := json.Unmarshal(data, &a); err != nil {
			return Applied{}, fmt.Errorf("authsync: %s %s: decode answer: %w", method, url, err)
		}
		return a, nil
	case resp.StatusCode == http.StatusConflict:
		var ans struct {
			Error   string  `json:"error"`
			Current Applied `json:"current"`
		}
		if err := json.Unmarshal(data, &ans); err != nil {
			return Applied{}, &StatusError{Method: method, URL: url, StatusCode: resp.StatusCode, Message: trimBody(string(data))}
		}
		return ans.Current, &StaleError{Addr: addr, Current: ans.Current, Message: trimBody(ans.Error)}
	default:
		return Applied{}, &StatusError{Method: method, URL: url, StatusCode: resp.StatusCode, Message: errorText(data)}
	}
}

// url is the auth endpoint at addr; addr may also be a base URL with a
// scheme (http://127.0.0.1:8081), which tests find handy.
func (c *HTTPClient) url(addr string) string {
	if strings.Contains(addr, "://") {
		return strings.TrimSuffix(addr, "/") + authPath
	}
	scheme := c.Scheme
	if scheme == "" {
		scheme = "http"
	}
	return scheme + "://" + addr + authPath
}

// errorText renders the broker's error answer, {"error": ..., "details":
// [...]}, as one line; anything else as its text.
func errorText(data []byte) string {
	var ans struct {
		Error   string   `json:"error"`
		Details []string `json:"details"`
	}
	if err := json.Unmarshal(data, &ans); err != nil || ans.Error == "" {
		return trimBody(strings.Join(strings.Fields(string(data)), " "))
	}
	msg := ans.Error
	if len(ans.Details) > 0 {
		msg += ": " + strings.Join(ans.Details, "; ")
	}
	return trimBody(msg)
}

// trimBody bounds s to maxErrorBodyLen bytes on a rune boundary.
func trimBody(s string) string {
	if len(s) <= maxErrorBodyLen {
		return s
	}
	cut := maxErrorBodyLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("... (%d more bytes)", len(s)-cut)
}

// gzipBody compresses a bundle for PUT. BestSpeed: the password hashes,
// most of a bundle, do not compress much further at higher levels, and
// the push is on the reconcile path.
func gzipBody(body []byte) ([]byte, error) {
	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, gzip.BestSpeed) // the level is valid
	if _, err := zw.Write(body); err != nil {
		return nil, fmt.Errorf("gzip bundle: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("gzip bundle: %w", err)
	}
	return z.Bytes(), nil
}

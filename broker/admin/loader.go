// Package admin is the broker's management side: it applies auth bundles
// from the mounted Secret file and from the operator's pushes, and serves
// the admin HTTP API (auth, health, readiness, metrics).
package admin

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fleetmq/fleetmq/broker"
	"github.com/fleetmq/fleetmq/broker/authz"
	"github.com/fleetmq/fleetmq/broker/internal/dirwatch"
)

// Errors Apply returns; the HTTP API maps them to status codes.
var (
	// ErrInvalidBundle wraps the validation errors of a refused bundle (400).
	ErrInvalidBundle = errors.New("admin: invalid auth bundle")
	// ErrStaleRevision: the bundle's revision is lower than the one in force,
	// or equal with different content (409).
	ErrStaleRevision = errors.New("admin: stale auth bundle revision")
)

// Applied describes the bundle in force.
type Applied struct {
	Revision       int64     `json:"revision"`
	Hash           string    `json:"hash"`
	AppliedAt      time.Time `json:"appliedAt"`
	Source         string    `json:"source"`
	Users          int       `json:"users"`
	Rules          int       `json:"rules"`
	AllowAnonymous bool      `json:"allowAnonymous"`
	// Revoked is how many sessions the swap ended (only in Apply's answer).
	Revoked int `json:"revoked,omitempty"`
}

// Loader applies auth bundles to a broker. Whichever source (file or API)
// brings the higher revision wins; a bundle is compiled off to the side and
// swapped in atomically, so the check path never waits for a reload.
type Loader struct {
	srv     *broker.Server
	log     *slog.Logger
	metrics *Metrics

	// mu serializes applies so revisions compare against what is in force.
	mu      sync.Mutex
	current atomic.Pointer[state]

	// fileMu serializes reading and applying the auth file, and guards
	// fileSum.
	fileMu sync.Mutex
	// fileSum is the SHA-256 of the bytes last read from the auth file
	// (zero before the first read): the watcher applies the file only when
	// its content differs.
	fileSum [sha256.Size]byte
	// fileChecked, set by tests before WatchFile, is called after each look
	// the watcher takes at the file; changed says whether the content
	// differed from the last read and so went to Apply.
	fileChecked func(changed bool)
}

type state struct {
	policy  *authz.Policy
	applied Applied
}

// NewLoader returns a loader for srv; metrics may be nil.
func NewLoader(srv *broker.Server, log *slog.Logger, metrics *Metrics) *Loader {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Loader{srv: srv, log: log, metrics: metrics}
}

// Current returns the bundle in force; ok is false before the first one.
func (l *Loader) Current() (Applied, bool) {
	st := l.current.Load()
	if st == nil {
		return Applied{}, false
	}
	return st.applied, true
}

// Apply parses, validates and compiles data, and swaps it in when its
// revision is newer than the one in force (or force is set). An equal
// revision with equal content is a no-op that reports success.
func (l *Loader) Apply(data []byte, source string, force bool) (Applied, error) {
	return l.apply(data, nil, source, force)
}

// apply is Apply of a bundle that must be the one manifest m (nil: any)
// describes.
func (l *Loader) apply(data []byte, m *authz.Manifest, source string, force bool) (Applied, error) {
	start := time.Now()
	b, err := authz.Parse(data)
	if err != nil {
		l.metrics.reload("invalid")
		return Applied{}, fmt.Errorf("%w: %w", ErrInvalidBundle, err)
	}
	if m != nil {
		if err := m.Check(b); err != nil {
			return Applied{}, err // counted by the file reader
		}
	}
	policy, err := authz.Compile(b)
	if err != nil {
		l.metrics.reload("invalid")
		// Compile says "invalid auth bundle: <problems>"; keep the problems
		// only, so the message does not say it twice.
		if inner := errors.Unwrap(err); inner != nil {
			err = inner
		}
		return Applied{}, fmt.Errorf("%w: %w", ErrInvalidBundle, err)
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	cur := l.current.Load()
	if cur != nil && !force {
		switch {
		case b.Revision < cur.applied.Revision:
			l.metrics.reload("stale")
			return cur.applied, fmt.Errorf("%w: revision %d is older than %d in force", ErrStaleRevision, b.Revision, cur.applied.Revision)
		case b.Revision == cur.applied.Revision && policy.Hash() == cur.applied.Hash:
			l.metrics.reload("unchanged")
			return cur.applied, nil
		case b.Revision == cur.applied.Revision:
			l.metrics.reload("stale")
			return cur.applied, fmt.Errorf("%w: revision %d is in force with other content (hash %s)", ErrStaleRevision, b.Revision, cur.applied.Hash)
		}
	}
	if cur != nil {
		policy.WarmCache(cur.policy)
	}
	revoked := l.srv.SetAuthorizer(PolicyAuthorizer(policy))
	applied := Applied{
		Revision:       b.Revision,
		Hash:           policy.Hash(),
		AppliedAt:      time.Now().UTC(),
		Source:         source,
		Users:          len(b.Users),
		Rules:          len(b.Rules),
		AllowAnonymous: b.AllowAnonymous,
	}
	l.current.Store(&state{policy: policy, applied: applied})
	elapsed := time.Since(start)
	l.metrics.applied(applied.Revision, elapsed)
	l.log.Info("Auth bundle applied", "revision", applied.Revision, "hash", applied.Hash, "source", source,
		"users", applied.Users, "rules", applied.Rules, "revoked", revoked, "duration", elapsed)
	applied.Revoked = revoked
	return applied, nil
}

// LoadFile applies the bundle at path once (at start-up). path holds a
// bundle, or a manifest (authz.Manifest) whose shards are files in the
// same directory. Shards that do not match the manifest yet (the kubelet
// updates the Secrets of a projected volume one by one) are an error
// matching authz.ErrInconsistent: the caller stays unready and lets
// WatchFile load the bundle once it is whole.
func (l *Loader) LoadFile(path string) (Applied, error) {
	l.fileMu.Lock()
	defer l.fileMu.Unlock()
	a, sum, err := l.applyFileLocked(path)
	if err != nil {
		return a, fmt.Errorf("auth file %s: %w", path, err)
	}
	l.fileSum = sum
	return a, nil
}

// applyFileLocked reads and applies the bundle at path; sum is that of
// path's own bytes (readAuthFile). fileMu must be held.
func (l *Loader) applyFileLocked(path string) (Applied, [sha256.Size]byte, error) {
	data, sum, m, err := readAuthFile(path)
	var a Applied
	if err == nil {
		a, err = l.apply(data, m, "file", false)
	}
	if errors.Is(err, authz.ErrInconsistent) {
		l.metrics.reload("inconsistent")
	}
	return a, sum, err
}

// readAuthFile reads the bundle at path, assembling it from its shards
// when path holds a manifest. sum is the SHA-256 of path's own bytes: a
// manifest names its shards' hashes, so equal sums mean equal bundles.
func readAuthFile(path string) (data []byte, sum [sha256.Size]byte, m *authz.Manifest, err error) {
	data, err = os.ReadFile(path)
	if err != nil {
		return nil, sum, nil, err
	}
	sum = sha256.Sum256(data)
	if !authz.IsManifest(data) {
		return data, sum, nil, nil
	}
	if m, err = authz.ParseManifest(data); err != nil {
		return nil, sum, nil, err
	}
	dir := filepath.Dir(path)
	data, err = m.Assemble(func(file string) ([]byte, error) { return os.ReadFile(filepath.Join(dir, file)) })
	if err != nil {
		return nil, sum, nil, err
	}
	return data, sum, m, nil
}

// fileRecheck is how often WatchFile looks at the auth file without an
// event: a sharded bundle found mid-update is retried at the latest then.
const fileRecheck = 10 * time.Second

// WatchFile reloads path whenever its content changes until ctx ends. It
// watches the directory, not the file, so Kubernetes' atomic swap of the
// `..data` symlink in a mounted Secret is seen; on any event there (and
// every fileRecheck) it reads the file and goes no further when the bytes
// are those it last applied, so other files in the directory, or the same
// bundle written again, cost no parse, log line or reload count. A bundle
// that fails to apply is logged once and the one in force stays; a
// sharded one found inconsistent is retried until it is whole.
func (l *Loader) WatchFile(ctx context.Context, path string) error {
	err := dirwatch.Watch(ctx, []string{filepath.Dir(path)}, fileRecheck, l.log, "Auth file", func() { l.reloadFile(path) })
	if err != nil {
		return fmt.Errorf("watch auth file: %w", err)
	}
	return nil
}

func (l *Loader) reloadFile(path string) {
	l.fileMu.Lock()
	defer l.fileMu.Unlock()
	changed := false
	if l.fileChecked != nil {
		defer func() { l.fileChecked(changed) }()
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			l.log.Error("Auth file unreadable; keeping the bundle in force", "path", path, "err", err)
		}
		return
	}
	if sha256.Sum256(raw) == l.fileSum {
		return
	}
	changed = true
	_, sum, err := l.applyFileLocked(path)
	switch {
	case errors.Is(err, authz.ErrInconsistent):
		// fileSum stays, so the next look tries again.
		l.log.Info("Auth shards mid-update; keeping the bundle in force and retrying", "path", path, "err", err)
		return
	case err == nil:
	case errors.Is(err, ErrStaleRevision):
		// The API pushed a newer revision than the Secret holds yet.
		l.log.Debug("Auth file not newer than the bundle in force", "path", path, "err", err)
	default:
		l.log.Error("Auth file refused; keeping the bundle in force", "path", path, "err", err)
	}
	l.fileSum = sum
}

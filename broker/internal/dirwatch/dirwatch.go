// Package dirwatch tells a broker that files it loaded may have changed.
// It watches directories, not files, so that Kubernetes swapping a mounted
// Secret's "..data" symlink is seen, and lets a burst of events settle
// before one reload.
package dirwatch

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/fsnotify/fsnotify"
)

// settle is how long events must stop before reload runs: a symlink swap
// is several events.
const settle = 100 * time.Millisecond

// Watch calls reload, from a goroutine of its own, after changes in dirs
// have settled, and every interval too (0: only on changes) in case an
// event was missed, until ctx ends. Watch errors are logged as "<what>
// watch error". It fails only when a directory cannot be watched.
func Watch(ctx context.Context, dirs []string, interval time.Duration, log *slog.Logger, what string, reload func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	slices.Sort(dirs)
	for _, dir := range slices.Compact(dirs) {
		if err := w.Add(dir); err != nil {
			w.Close()
			return fmt.Errorf("directory %s: %w", dir, err)
		}
	}
	go run(ctx, w, interval, log, what, reload)
	return nil
}

func run(ctx context.Context, w *fsnotify.Watcher, interval time.Duration, log *slog.Logger, what string, reload func()) {
	defer w.Close()
	var tick <-chan time.Time
	if interval > 0 {
		tk := time.NewTicker(interval)
		defer tk.Stop()
		tick = tk.C
	}
	settled := time.NewTimer(time.Hour)
	settled.Stop()
	defer settled.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if ev.Op != fsnotify.Chmod {
				settled.Reset(settle)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			log.Warn(what+" watch error", "err", err)
		case <-settled.C:
			reload()
		case <-tick:
			reload()
		}
	}
}

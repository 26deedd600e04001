package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fleetmq/fleetmq/broker/store"
)

// openStore opens the store in dir. A corrupt store is a usage error
// (exit 2) naming the file, unless resetCorrupt: then the directory is
// moved aside to <dir>.corrupt-<timestamp>, loudly, and the broker starts
// with an empty store. A store locked by another process is never moved.
func openStore(dir string, resetCorrupt bool, log *slog.Logger) (*store.Bolt, error) {
	b, err := store.Open(dir, store.Options{})
	switch {
	case err == nil:
		return b, nil
	case errors.Is(err, store.ErrCorrupt) && resetCorrupt:
		dir = filepath.Clean(dir)
		aside := fmt.Sprintf("%s.corrupt-%s", dir, time.Now().UTC().Format("20060102T150405.000Z"))
		if rerr := os.Rename(dir, aside); rerr != nil {
			return nil, usageError{fmt.Errorf("%w; moving it aside failed: %w", err, rerr)}
		}
		log.Error("DATA DIRECTORY CORRUPT: moved aside; starting with an EMPTY store (its sessions, queued and retained messages are not restored)",
			"dir", dir, "movedTo", aside, "err", err)
		b, err = store.Open(dir, store.Options{})
		if err != nil {
			return nil, usageError{err}
		}
		return b, nil
	case errors.Is(err, store.ErrCorrupt):
		return nil, usageError{fmt.Errorf("%w (--data-dir-reset-corrupt moves it aside and starts empty)", err)}
	default:
		return nil, usageError{err}
	}
}

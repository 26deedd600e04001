package main

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleetmq/fleetmq/broker/store"
)

// TestCorruptDataDir: a corrupt store refuses to start with one line
// naming the file (exit 2), and --data-dir-reset-corrupt moves the
// directory aside, says so loudly, and starts empty.
func TestCorruptDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	dbFile := filepath.Join(dir, store.FileName)
	if err := os.WriteFile(dbFile, bytes.Repeat([]byte("not a database "), 1000), 0o600); err != nil {
		t.Fatal(err)
	}

	err := run([]string{"--data-dir", dir, "--mqtt-addr", "127.0.0.1:0", "--admin-addr", ""}, nil, io.Discard, io.Discard)
	var ue usageError
	if !errors.As(err, &ue) || !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("run: %v, want a usage error wrapping store.ErrCorrupt", err)
	}
	if msg := ue.Error(); !strings.Contains(msg, dbFile) || strings.Contains(msg, "\n") || !strings.Contains(msg, "--data-dir-reset-corrupt") {
		t.Errorf("message %q: want one line naming %s and the reset flag", msg, dbFile)
	}
	if _, err := os.Stat(dbFile); err != nil {
		t.Fatalf("the corrupt file was touched without the flag: %v", err)
	}

	var logs bytes.Buffer
	b, err := openStore(dir, true, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatalf("openStore with reset: %v", err)
	}
	defer b.Close()
	snap, _ := b.Load()
	if len(snap.Sessions) != 0 || len(snap.Retained) != 0 {
		t.Error("reset store is not empty")
	}
	aside, _ := filepath.Glob(dir + ".corrupt-*")
	if len(aside) != 1 {
		t.Fatalf("moved-aside directories: %v, want one", aside)
	}
	if _, err := os.Stat(filepath.Join(aside[0], store.FileName)); err != nil {
		t.Errorf("corrupt file not kept in %s: %v", aside[0], err)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), aside[0]) {
		t.Errorf("reset not logged loudly: %s", logs.String())
	}
}

// TestDataDirLocked: a second broker on the same data directory fails
// clearly (exit 2) and moves nothing aside, even with the reset flag.
func TestDataDirLocked(t *testing.T) {
	dir := t.TempDir()
	b, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, err = openStore(dir, true, slog.New(slog.NewTextHandler(io.Discard, nil)))
	var ue usageError
	if !errors.As(err, &ue) || !errors.Is(err, store.ErrLocked) {
		t.Fatalf("openStore: %v, want a usage error wrapping store.ErrLocked", err)
	}
	if aside, _ := filepath.Glob(filepath.Clean(dir) + ".corrupt-*"); len(aside) != 0 {
		t.Fatalf("a locked store was moved aside: %v", aside)
	}
}

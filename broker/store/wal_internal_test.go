package store

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestPrepareWhileASpareWaits: a second request while the spare of the
// first still waits (the writer rotated without it: it came late) must not
// prepare over the waiting file. It once did, re-opening the same name:
// the writer then took the first spare as its segment, and later the
// second descriptor of that same file as the next one, writing new
// records over a sealed segment not yet applied.
func TestPrepareWhileASpareWaits(t *testing.T) {
	dir := t.TempDir()
	w := segmentWriter{dir: dir, segmentBytes: 64 << 10,
		wantSpare: make(chan struct{}, 1), spares: make(chan *os.File, 1)}
	done := make(chan struct{})
	go w.prepare(done)
	w.wantSpare <- struct{}{}
	for len(w.spares) == 0 {
		time.Sleep(time.Millisecond)
	}
	w.wantSpare <- struct{}{} // while the first spare waits
	close(w.wantSpare)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the preparer made a second spare over the waiting one and blocked handing it over")
	}
	if _, err := os.Stat(filepath.Join(dir, spareName)); !os.IsNotExist(err) {
		t.Errorf("unused spare left behind: %v", err)
	}
}

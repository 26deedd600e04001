package admin_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleetmq/fleetmq/broker/authz"
)

// sharded lays b out as the operator does: gzip-compressed, cut into n
// shards "shard-<i>", and a manifest naming them. It writes no files.
func sharded(t testing.TB, b authz.Bundle, n int) (manifest []byte, shards map[string][]byte) {
	t.Helper()
	data := encode(t, b)
	parsed, err := authz.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(data)
	zw.Close()
	stream := z.Bytes()
	m := authz.Manifest{APIVersion: authz.ManifestAPIVersion, Revision: b.Revision, Hash: parsed.Hash(), Encoding: authz.EncodingGzip, Size: int64(len(data))}
	shards = map[string][]byte{}
	size := (len(stream) + n - 1) / n
	for i := 0; len(stream) > 0; i++ {
		piece := stream[:min(size, len(stream))]
		stream = stream[len(piece):]
		sum := sha256.Sum256(piece)
		file := fmt.Sprintf("shard-%d", i)
		shards[file] = piece
		m.Shards = append(m.Shards, authz.Shard{Secret: "acme-auth-" + file, File: file, Size: int64(len(piece)), SHA256: hex.EncodeToString(sum[:])})
	}
	if len(m.Shards) != n {
		t.Fatalf("bundle of %d gzip bytes cut into %d shards, want %d", z.Len(), len(m.Shards), n)
	}
	manifest, err = json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return manifest, shards
}

// files is the projected volume's content: the manifest and the shards.
func files(manifest []byte, shards map[string][]byte) map[string][]byte {
	f := map[string][]byte{"manifest.json": manifest}
	for name, data := range shards {
		f[name] = data
	}
	return f
}

// TestReloadSharded: a bundle in shards loads at start and on reload; a
// volume whose manifest is newer than some shard (the kubelet refreshes
// each Secret on its own) keeps the bundle in force, and the new one
// applies once the shards catch up.
func TestReloadSharded(t *testing.T) {
	e := newEnv(t, envOptions{})
	sd := &secretDir{dir: t.TempDir()}
	m1, s1 := sharded(t, reloadBundle(t, 1), 3)
	sd.update(t, files(m1, s1))
	path := filepath.Join(sd.dir, "manifest.json")
	if a, err := e.loader.LoadFile(path); err != nil || a.Revision != 1 || a.Users != 4 {
		t.Fatalf("LoadFile: got %+v, %v, want revision 1 with 4 users", a, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := e.loader.WatchFile(ctx, path); err != nil {
		t.Fatalf("WatchFile: %v", err)
	}
	x := connectPair(t, e)

	m2, s2 := sharded(t, without(reloadBundle(t, 2), "a"), 3)
	mixed := map[string][]byte{"shard-0": s2["shard-0"], "shard-1": s1["shard-1"], "shard-2": s2["shard-2"]}
	before := metric(t, e.metrics, "fleetmq_auth_reloads_total", "inconsistent")
	sd.update(t, files(m2, mixed))
	t.Run("mid-update keeps the bundle in force", func(t *testing.T) {
		eventually(t, "the mixed shards to be seen", func() bool {
			return metric(t, e.metrics, "fleetmq_auth_reloads_total", "inconsistent") > before
		})
		if a, _ := e.loader.Current(); a.Revision != 1 || a.Users != 4 {
			t.Errorf("in force: %+v, want revision 1 with 4 users", a)
		}
		x.a.expectAlive(t)
	})

	sd.update(t, files(m2, s2))
	t.Run("whole shards apply", func(t *testing.T) {
		eventually(t, "revision 2 from the shards", func() bool { a, _ := e.loader.Current(); return a.Revision == 2 })
		if a, _ := e.loader.Current(); a.Source != "file" || a.Users != 3 {
			t.Errorf("in force: %+v, want source file with 3 users", a)
		}
		x.a.expectKicked(t, 0x87)
		x.bystanderUnharmed(t, e, "after the sharded reload")
	})
}

// TestStartShardedMidUpdate: a broker starting while its shards are
// inconsistent has no bundle and is not ready (rather than exiting or
// running with a wrong one), and becomes ready once they are whole.
func TestStartShardedMidUpdate(t *testing.T) {
	e := newEnv(t, envOptions{})
	sd := &secretDir{dir: t.TempDir()}
	_, s1 := sharded(t, reloadBundle(t, 1), 2)
	m2, s2 := sharded(t, reloadBundle(t, 2), 2)
	sd.update(t, files(m2, map[string][]byte{"shard-0": s2["shard-0"], "shard-1": s1["shard-1"]}))
	path := filepath.Join(sd.dir, "manifest.json")
	_, err := e.loader.LoadFile(path)
	if !errors.Is(err, authz.ErrInconsistent) {
		t.Fatalf("LoadFile of mixed shards: err %v, want ErrInconsistent", err)
	}
	if a, ok := e.loader.Current(); ok {
		t.Fatalf("a bundle is in force after an inconsistent start: %+v", a)
	}
	if code, body := e.do(t, http.MethodGet, "/readyz", "", nil); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz: %d %s, want 503", code, body)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := e.loader.WatchFile(ctx, path); err != nil {
		t.Fatalf("WatchFile: %v", err)
	}
	sd.update(t, files(m2, s2))
	eventually(t, "revision 2 once the shards are whole", func() bool { a, ok := e.loader.Current(); return ok && a.Revision == 2 })
	if code, body := e.do(t, http.MethodGet, "/readyz", "", nil); code != http.StatusOK {
		t.Errorf("/readyz: %d %s, want 200", code, body)
	}
}

// putEncoded PUTs body with Content-Encoding enc.
func (e *env) putEncoded(t testing.TB, body []byte, enc string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, e.api.URL+"/v1/auth", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.token)
	req.Header.Set("Content-Encoding", enc)
	resp, err := e.api.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

func gzipped(data []byte) []byte {
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(data)
	zw.Close()
	return z.Bytes()
}

// TestPutGzip: PUT /v1/auth takes a gzip body; the size limit holds after
// decompression too (a small gzip bomb is 413, not memory), and an
// encoding it cannot read is a clear 400.
func TestPutGzip(t *testing.T) {
	e := newEnv(t, envOptions{maxBodyBytes: 64 << 10})
	if code, body := e.putEncoded(t, gzipped(encode(t, reloadBundle(t, 1))), "gzip"); code != http.StatusOK {
		t.Fatalf("PUT gzip: %d %s, want 200", code, body)
	}
	if a := e.current(t); a.Revision != 1 || a.Users != 4 {
		t.Errorf("in force: %+v, want revision 1 with 4 users", a)
	}
	bomb := gzipped(bytes.Repeat([]byte(" "), 1<<20)) // 1 MiB of JSON whitespace in ~1 KB
	if code, body := e.putEncoded(t, bomb, "gzip"); code != http.StatusRequestEntityTooLarge {
		t.Errorf("PUT a gzip bomb: %d %s, want 413", code, body)
	}
	if code, body := e.putEncoded(t, []byte("not gzip"), "gzip"); code != http.StatusBadRequest {
		t.Errorf("PUT garbage as gzip: %d %s, want 400", code, body)
	}
	code, body := e.putEncoded(t, encode(t, reloadBundle(t, 2)), "br")
	if code != http.StatusBadRequest || !strings.Contains(string(body), "Content-Encoding") {
		t.Errorf("PUT br: %d %s, want 400 naming Content-Encoding", code, body)
	}
	if a := e.current(t); a.Revision != 1 {
		t.Errorf("in force after refused PUTs: revision %d, want 1", a.Revision)
	}
}

package authz

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ManifestAPIVersion marks a sharded bundle's manifest. A file holding a
// bundle has APIVersion instead, which is how a reader tells the two apart.
const ManifestAPIVersion = "authz.fleetmq.io/manifest/v1"

// EncodingGzip is the only Manifest.Encoding: the shards, concatenated in
// order, are one gzip stream of the bundle's JSON.
const EncodingGzip = "gzip"

// MaxBundleBytes bounds a bundle's JSON once decompressed, so a corrupt or
// hostile stream cannot exhaust memory: 100,000 users take about 25 MB.
const MaxBundleBytes = 256 << 20

// ErrInconsistent is matched (errors.Is) by Assemble's error when the
// shards do not match the manifest: a sharded bundle mid-update (the
// kubelet refreshes each Secret of a projected volume on its own). The
// reader keeps what it has and tries again.
var ErrInconsistent = errors.New("authz: shards do not match the manifest")

// Manifest describes a bundle split into shards. The operator writes it
// next to the shards (each its own Secret, each mounted as a file); a
// broker reads it, then the shards, and applies the bundle only when every
// shard matches its entry and the bundle is the revision and hash named
// here.
type Manifest struct {
	// APIVersion must be ManifestAPIVersion.
	APIVersion string `json:"apiVersion"`
	// Revision of the bundle.
	Revision int64 `json:"revision"`
	// Hash is Bundle.Hash() of the bundle.
	Hash string `json:"hash"`
	// Encoding of the concatenated shards: EncodingGzip.
	Encoding string `json:"encoding"`
	// Size is the length of the bundle's JSON, decompressed.
	Size int64 `json:"size"`
	// Shards in stream order.
	Shards []Shard `json:"shards"`
}

// Shard is one piece of a sharded bundle.
type Shard struct {
	// Secret is the Kubernetes Secret holding the shard (for people
	// reading the manifest; a broker reads File).
	Secret string `json:"secret"`
	// File is the shard's file name, in the manifest's directory.
	File string `json:"file"`
	// Size of the shard in bytes.
	Size int64 `json:"size"`
	// SHA256 of the shard, hex.
	SHA256 string `json:"sha256"`
}

// IsManifest reports whether data is a manifest rather than a bundle: its
// apiVersion is ManifestAPIVersion. Unreadable data is not a manifest.
func IsManifest(data []byte) bool {
	var v struct {
		APIVersion string `json:"apiVersion"`
	}
	return json.Unmarshal(data, &v) == nil && v.APIVersion == ManifestAPIVersion
}

// ParseManifest decodes and checks a manifest.
func ParseManifest(data []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("parse auth manifest: %w", err)
	}
	switch {
	case m.APIVersion != ManifestAPIVersion:
		return nil, fmt.Errorf("parse auth manifest: apiVersion %q, want %q", m.APIVersion, ManifestAPIVersion)
	case m.Encoding != EncodingGzip:
		return nil, fmt.Errorf("parse auth manifest: encoding %q, want %q", m.Encoding, EncodingGzip)
	case m.Revision < 0 || m.Size < 0 || m.Size > MaxBundleBytes:
		return nil, fmt.Errorf("parse auth manifest: revision %d or size %d out of range", m.Revision, m.Size)
	case len(m.Shards) == 0:
		return nil, errors.New("parse auth manifest: no shards")
	}
	for i, s := range m.Shards {
		if s.File == "" || strings.ContainsAny(s.File, `/\`) || s.File == "." || s.File == ".." || s.Size < 0 {
			return nil, fmt.Errorf("parse auth manifest: shards[%d]: file %q (size %d) is not a plain file name", i, s.File, s.Size)
		}
	}
	return &m, nil
}

// Assemble reads each shard with read (by Shard.File), checks its size and
// hash, and returns the bundle's JSON, decompressed. A shard that is
// missing, of another size or hash, or a bundle of another revision or
// hash than the manifest's, is ErrInconsistent.
func (m *Manifest) Assemble(read func(file string) ([]byte, error)) ([]byte, error) {
	var stream bytes.Buffer
	for i, s := range m.Shards {
		data, err := read(s.File)
		if err != nil {
			return nil, fmt.Errorf("%w: shards[%d] %s: %w", ErrInconsistent, i, s.File, err)
		}
		sum := sha256.Sum256(data)
		if int64(len(data)) != s.Size || hex.EncodeToString(sum[:]) != s.SHA256 {
			return nil, fmt.Errorf("%w: shards[%d] %s is not the one of revision %d (size %d, want %d)", ErrInconsistent, i, s.File, m.Revision, len(data), s.Size)
		}
		stream.Write(data)
	}
	zr, err := gzip.NewReader(&stream)
	if err != nil {
		return nil, fmt.Errorf("auth manifest revision %d: gunzip: %w", m.Revision, err)
	}
	bundle, err := io.ReadAll(io.LimitReader(zr, m.Size+1))
	if err != nil {
		return nil, fmt.Errorf("auth manifest revision %d: gunzip: %w", m.Revision, err)
	}
	if int64(len(bundle)) != m.Size {
		return nil, fmt.Errorf("auth manifest revision %d: bundle is %d bytes or more, manifest says %d", m.Revision, len(bundle), m.Size)
	}
	return bundle, nil
}

// Check reports whether b is the bundle the manifest describes; a mismatch
// is ErrInconsistent.
func (m *Manifest) Check(b *Bundle) error {
	if b.Revision != m.Revision || b.Hash() != m.Hash {
		return fmt.Errorf("%w: bundle has revision %d hash %s, manifest names %d %s", ErrInconsistent, b.Revision, b.Hash(), m.Revision, m.Hash)
	}
	return nil
}

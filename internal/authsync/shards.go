package authsync

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/fleetmq/fleetmq/broker/authz"
)

const (
	// ShardSlots is how many bundle shards a broker pod mounts: a fixed
	// number of optional slots, so a bundle growing by a shard changes no
	// pod template and rolls no pod. 16 slots of ShardBytes hold about
	// 15 MB of gzip, room for 100,000 users with a margin (docs/architecture.md).
	ShardSlots = 16
	// ShardBytes is the most one shard holds. A Secret's data may not
	// exceed 1 MiB (1,048,576 bytes); this leaves room for the object's
	// metadata.
	ShardBytes = 1000 * 1000
)

// Sharded is a bundle (or the operator's state) gzip-compressed and cut
// into pieces of at most ShardBytes, with the manifest that names them.
type Sharded struct {
	// Manifest describes Shards; its Shard.Secret and Shard.File come from
	// the names passed to ShardBundle/ShardState.
	Manifest authz.Manifest
	// ManifestJSON is Manifest encoded.
	ManifestJSON []byte
	// Shards in stream order.
	Shards [][]byte
}

// ShardBundle compresses bundle (canonical JSON of the bundle at revision
// with hash hash) and cuts it into shards; name(i) gives shard i's Secret
// and file names. More than ShardSlots shards is an error: the pods could
// not mount them, and the operator must say so rather than ship a bundle
// no pod can read.
func ShardBundle(bundle []byte, revision int64, hash string, name func(i int) (secret, file string)) (*Sharded, error) {
	s, err := shard(bundle, revision, hash, name)
	if err != nil {
		return nil, err
	}
	if n := len(s.Shards); n > ShardSlots {
		return nil, fmt.Errorf("auth bundle revision %d is %d bytes gzip-compressed: %d shards, more than the %d a pod mounts", revision, s.compressed(), n, ShardSlots)
	}
	return s, nil
}

// ShardState compresses the operator's state and cuts it into shards.
// State is never mounted, so it takes as many shards as it needs.
func ShardState(state []byte, revision int64, name func(i int) (secret, file string)) (*Sharded, error) {
	return shard(state, revision, "", name)
}

func shard(data []byte, revision int64, hash string, name func(i int) (secret, file string)) (*Sharded, error) {
	var z bytes.Buffer
	// The default level: the hashes that are most of a bundle do not
	// compress further at 9, which costs several times the CPU.
	zw, _ := gzip.NewWriterLevel(&z, gzip.DefaultCompression) // the level is valid
	if _, err := zw.Write(data); err != nil {
		return nil, fmt.Errorf("gzip auth data: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("gzip auth data: %w", err)
	}
	stream := z.Bytes()
	s := &Sharded{Manifest: authz.Manifest{
		APIVersion: authz.ManifestAPIVersion, Revision: revision, Hash: hash,
		Encoding: authz.EncodingGzip, Size: int64(len(data)),
	}}
	for i := 0; len(stream) > 0; i++ {
		piece := stream[:min(len(stream), ShardBytes)]
		stream = stream[len(piece):]
		sum := sha256.Sum256(piece)
		secret, file := name(i)
		s.Shards = append(s.Shards, piece)
		s.Manifest.Shards = append(s.Manifest.Shards, authz.Shard{
			Secret: secret, File: file, Size: int64(len(piece)), SHA256: hex.EncodeToString(sum[:]),
		})
	}
	var err error
	if s.ManifestJSON, err = json.Marshal(s.Manifest); err != nil {
		return nil, fmt.Errorf("encode auth manifest: %w", err)
	}
	return s, nil
}

// compressed is the total size of the shards.
func (s *Sharded) compressed() int {
	n := 0
	for _, p := range s.Shards {
		n += len(p)
	}
	return n
}

// Unshard reads the data a manifest describes: read returns the shard
// stored under a Shard (by Secret name). The result is checked against
// the manifest's sizes and hashes (authz.ErrInconsistent when it does not
// match).
func Unshard(manifest []byte, read func(authz.Shard) ([]byte, error)) ([]byte, *authz.Manifest, error) {
	m, err := authz.ParseManifest(manifest)
	if err != nil {
		return nil, nil, err
	}
	byFile := make(map[string]authz.Shard, len(m.Shards))
	for _, s := range m.Shards {
		byFile[s.File] = s
	}
	data, err := m.Assemble(func(file string) ([]byte, error) { return read(byFile[file]) })
	if err != nil {
		return nil, m, err
	}
	return data, m, nil
}

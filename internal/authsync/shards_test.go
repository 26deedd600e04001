package authsync

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/fleetmq/fleetmq/api/v1alpha1"
	"github.com/fleetmq/fleetmq/broker/authz"
)

// shardUsers is the scale the sharded layout is built for.
const shardUsers = 100_000

// productionHash makes hashes of the production format and length (salt
// and key random, the iteration count authz.DefaultIterations) at the cost
// of one PBKDF2 iteration, so 100,000 of them take a second, not an hour.
func productionHash(p []byte) (string, error) {
	h, err := authz.HashPassword(p, 1)
	if err != nil {
		return "", err
	}
	return strings.Replace(h, "$7$1$", "$7$"+strconv.Itoa(authz.DefaultIterations)+"$", 1), nil
}

// fleet compiles n Users with generated passwords in groups of 100, and
// one ACL of two rules per group, as a fleet of devices would have.
func fleet(t *testing.T, n int) *Result {
	t.Helper()
	rnd := rand.New(rand.NewPCG(1, 2))
	users := make([]v1alpha1.User, 0, n)
	secs := make(map[string]*corev1.Secret, n)
	var acls []v1alpha1.ACL
	for i := range n {
		name := fmt.Sprintf("device-%06d", i)
		group := fmt.Sprintf("site-%04d", i/100)
		users = append(users, newUser(name, i, withGroups(group, "devices")))
		s := generated(name, strconv.FormatUint(rnd.Uint64(), 36)+strconv.FormatUint(rnd.Uint64(), 36))
		secs[s.Name] = s
		if i%100 == 0 {
			acls = append(acls, newACL("acl-"+group,
				v1alpha1.ACLRule{Subjects: v1alpha1.ACLSubjects{Groups: []string{group}}, Topics: []string{"sites/" + group + "/%u/#"}, Actions: pubSub, Effect: v1alpha1.EffectAllow},
				v1alpha1.ACLRule{Subjects: v1alpha1.ACLSubjects{Groups: []string{group}}, Topics: []string{"sites/" + group + "/config/#"}, Actions: pub, Effect: v1alpha1.EffectDeny},
			))
		}
	}
	res, err := Compile(Input{Broker: newBroker(false), Users: users, ACLs: acls, Secrets: secs, HashPassword: productionHash})
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	if len(res.Bundle.Users) != n {
		t.Fatalf("bundle has %d users, want %d", len(res.Bundle.Users), n)
	}
	return res
}

func shardName(i int) (string, string) {
	return "b1-auth-" + strconv.Itoa(i), "shard-" + strconv.Itoa(i)
}

// A compiled bundle of 100,000 users, and the operator's state for it,
// shard into Secrets that each fit the API server's 1 MiB limit, the
// bundle within the slots a pod mounts, and come back byte for byte.
// The sizes it logs are those docs/architecture.md records.
func TestShardHundredThousandUsers(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles 100,000 users")
	}
	res := fleet(t, shardUsers)
	state, err := res.State.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := ShardBundle(res.BundleJSON, res.Bundle.Revision, res.State.Hash, shardName)
	if err != nil {
		t.Fatalf("ShardBundle: %v", err)
	}
	st, err := ShardState(state, res.State.Revision, shardName)
	if err != nil {
		t.Fatalf("ShardState: %v", err)
	}
	for _, s := range []*Sharded{bundle, st} {
		if len(s.Shards) < 2 {
			t.Errorf("%d shards; 100,000 users should need several", len(s.Shards))
		}
		for i, p := range s.Shards {
			if len(p) > ShardBytes {
				t.Errorf("shard %d is %d bytes, over %d", i, len(p), ShardBytes)
			}
		}
		if len(s.ManifestJSON) > 64<<10 {
			t.Errorf("manifest is %d bytes; it should stay small", len(s.ManifestJSON))
		}
	}
	got := unshard(t, bundle)
	if !bytes.Equal(got, res.BundleJSON) {
		t.Fatalf("bundle does not come back from its shards (%d bytes, want %d)", len(got), len(res.BundleJSON))
	}
	b, err := authz.Parse(got)
	if err != nil {
		t.Fatal(err)
	}
	if err := bundle.Manifest.Check(b); err != nil {
		t.Errorf("Check: %v", err)
	}
	if got := unshard(t, st); !bytes.Equal(got, state) {
		t.Errorf("state does not come back from its shards")
	}
	t.Logf("%d users, %d ACL rules: bundle %d bytes (%d per user) → gzip %d (%d per user) in %d of %d shards; state %d bytes (%d per user) → gzip %d (%d per user) in %d shards",
		shardUsers, len(res.Bundle.Rules), len(res.BundleJSON), len(res.BundleJSON)/shardUsers, bundle.compressed(), bundle.compressed()/shardUsers,
		len(bundle.Shards), ShardSlots, len(state), len(state)/shardUsers, st.compressed(), st.compressed()/shardUsers, len(st.Shards))
}

// unshard reads s back through Unshard.
func unshard(t *testing.T, s *Sharded) []byte {
	t.Helper()
	byName := map[string][]byte{}
	for i, sh := range s.Manifest.Shards {
		byName[sh.Secret] = s.Shards[i]
	}
	data, _, err := Unshard(s.ManifestJSON, func(sh authz.Shard) ([]byte, error) { return byName[sh.Secret], nil })
	if err != nil {
		t.Fatalf("Unshard: %v", err)
	}
	return data
}

// More than ShardSlots shards is refused with the sizes in the message,
// not shipped as a bundle no pod can mount.
func TestShardBundleTooLarge(t *testing.T) {
	big := make([]byte, (ShardSlots+1)*ShardBytes)
	cc := rand.NewChaCha8([32]byte{3, 4})
	cc.Read(big) // incompressible
	_, err := ShardBundle(big, 7, "h", shardName)
	if err == nil || !strings.Contains(err.Error(), "more than the 16 a pod mounts") {
		t.Fatalf("ShardBundle of %d random bytes: err %v, want one naming the 16 slots", len(big), err)
	}
}

// A shard of another revision (the kubelet has updated the manifest's
// Secret but not yet this shard's) is ErrInconsistent, as is a missing
// one; the data comes back only when every shard matches.
func TestUnshardInconsistent(t *testing.T) {
	res := fleet(t, 15_000) // over 1 MB of gzip: two shards
	old, err := ShardBundle(res.BundleJSON, 1, res.State.Hash, shardName)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Replace(res.BundleJSON, []byte(`"revision":1`), []byte(`"revision":2`), 1)
	cur, err := ShardBundle(data, 2, "other", shardName)
	if err != nil {
		t.Fatal(err)
	}
	if len(cur.Shards) < 2 {
		t.Fatalf("%d shards; the test needs a bundle of several", len(cur.Shards))
	}
	tests := []struct {
		name string
		read func(i int) ([]byte, error)
	}{
		{"last shard still old", func(i int) ([]byte, error) {
			if i == len(cur.Shards)-1 && i < len(old.Shards) {
				return old.Shards[i], nil
			}
			return cur.Shards[i], nil
		}},
		{"first shard still old", func(i int) ([]byte, error) {
			if i == 0 {
				return old.Shards[0], nil
			}
			return cur.Shards[i], nil
		}},
		{"shard missing", func(i int) ([]byte, error) {
			if i == 1 {
				return nil, errors.New("no such file")
			}
			return cur.Shards[i], nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Unshard(cur.ManifestJSON, func(sh authz.Shard) ([]byte, error) {
				i, _ := strconv.Atoi(strings.TrimPrefix(sh.File, "shard-"))
				return tt.read(i)
			})
			if !errors.Is(err, authz.ErrInconsistent) {
				t.Fatalf("err = %v, want ErrInconsistent", err)
			}
		})
	}
}

package resource

import (
	"maps"
	"testing"
)

// The names and keys are spelled out: brokers already running read them
// (the manifest's file name is their --auth-file), so a change must fail
// here.
func TestAuthSecrets(t *testing.T) {
	b := newBroker()
	s := AuthSecret(b, []byte(`{"m":1}`), []byte(`{"s":1}`))
	if s.Name != "acme-auth" || s.Namespace != "tenant-a" {
		t.Errorf("auth Secret is %s/%s, want tenant-a/acme-auth", s.Namespace, s.Name)
	}
	if got, want := stringData(s.Data), map[string]string{"manifest.json": `{"m":1}`, "state-manifest.json": `{"s":1}`}; !maps.Equal(got, want) {
		t.Errorf("auth Secret data = %v, want %v", got, want)
	}
	if _, ok := s.Labels[LabelAuthShard]; ok {
		t.Errorf("auth Secret labelled as a shard: %v; pruning would delete it", s.Labels)
	}

	tests := []struct {
		name, kind, wantName string
	}{
		{AuthShardSecretName(b, 3), AuthShardBundle, "acme-auth-3"},
		{AuthStateShardSecretName(b, "0123abcd", 0), AuthShardState, "acme-auth-state-0123abcd-0"},
	}
	for _, tt := range tests {
		t.Run(tt.wantName, func(t *testing.T) {
			sh := AuthShardSecret(b, tt.name, tt.kind, []byte("gz"))
			if sh.Name != tt.wantName || sh.Namespace != "tenant-a" {
				t.Errorf("shard Secret is %s/%s, want tenant-a/%s", sh.Namespace, sh.Name, tt.wantName)
			}
			if got := stringData(sh.Data); !maps.Equal(got, map[string]string{"shard": "gz"}) {
				t.Errorf("shard data = %v, want shard: gz", got)
			}
			for k, v := range AuthShardSelector(b, tt.kind) {
				if sh.Labels[k] != v {
					t.Errorf("labels %v do not match the selector's %s=%s", sh.Labels, k, v)
				}
			}
			if sh.Labels[LabelCredentials] != "true" {
				t.Errorf("labels %v lack %s=true: the operator's Secret cache would not see the shard", sh.Labels, LabelCredentials)
			}
		})
	}
	if AuthShardFile(15) != "shard-15" {
		t.Errorf("AuthShardFile(15) = %q, want shard-15", AuthShardFile(15))
	}
}

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// docs/crd-reference.md is what the CRDs generate: a change to api/v1alpha1
// needs `make manifests docs`.
func TestReferenceUpToDate(t *testing.T) {
	root := filepath.Join("..", "..")
	got, err := Generate(filepath.Join(root, "config", "crd", "bases"))
	if err != nil {
		t.Fatal(err)
	}
	cur, err := os.ReadFile(filepath.Join(root, "docs", "crd-reference.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cur, got) {
		t.Fatal("docs/crd-reference.md is stale: run make docs (go run ./hack/crdref)")
	}
}

// The reference covers every kind and the fields users set most.
func TestReferenceContent(t *testing.T) {
	doc, err := Generate(filepath.Join("..", "..", "config", "crd", "bases"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(doc)
	for _, want := range []string{
		"## Broker v1alpha1", "## User v1alpha1", "## ACL v1alpha1",
		"| `spec.listeners.tls.secretName` | string |",
		"| `spec.brokerRef.name` | string |",
		"| `spec.rules[].effect` | string | `\"Allow\"` | one of `\"Allow\"`, `\"Deny\"` |",
		"replicas must be 1",
		"username is immutable",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("the reference lacks %q", want)
		}
	}
	if strings.Index(s, "## Broker") > strings.Index(s, "## User") || strings.Index(s, "## User") > strings.Index(s, "## ACL") {
		t.Error("kinds are not in the order Broker, User, ACL")
	}
}

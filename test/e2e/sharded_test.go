package e2e_test

import (
	"os"
	"path/filepath"

	"github.com/fleetmq/fleetmq/broker/authz"
)

// readPodBundle reads the bundle a pod's auth volume holds: the manifest
// at path and the shards beside it, checked as the broker checks them.
func readPodBundle(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, err := authz.ParseManifest(data)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	return m.Assemble(func(file string) ([]byte, error) { return os.ReadFile(filepath.Join(dir, file)) })
}

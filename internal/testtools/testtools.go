// Package testtools finds the tools the test suites need — envtest's
// kube-apiserver, etcd and kubectl, and helm — from their environment
// variable or from hack/envtest.sh, which builds them from the Go module
// proxy when they are not cached. Suites fail, not skip, when a tool is
// missing: CI builds them.
package testtools

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Tool returns $envVar if set, or the last stdout line of
// `hack/envtest.sh arg` run from the module root.
func Tool(envVar, arg string) (string, error) {
	if path := os.Getenv(envVar); path != "" {
		return path, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(filepath.Join(root, "hack", "envtest.sh"), arg)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("$%s is not set and hack/envtest.sh %s failed: %w\n%s", envVar, arg, err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	return strings.TrimSpace(lines[len(lines)-1]), nil
}

// Assets returns the envtest asset directory ($KUBEBUILDER_ASSETS or
// hack/envtest.sh assets) after checking that each of bins is in it.
func Assets(bins ...string) (string, error) {
	dir, err := Tool("KUBEBUILDER_ASSETS", "assets")
	if err != nil {
		return "", err
	}
	for _, bin := range bins {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			return "", fmt.Errorf("%s missing in %s (run hack/envtest.sh assets): %w", bin, dir, err)
		}
	}
	return dir, nil
}

// moduleRoot is the nearest directory above the working directory (a
// test's package directory) that holds go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testtools: no go.mod above the working directory")
		}
		dir = parent
	}
}

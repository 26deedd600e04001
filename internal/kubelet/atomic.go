package kubelet

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// dataDirName is the symlink the kubelet swaps atomically in a ConfigMap or
// Secret volume; every visible file is a symlink through it.
const (
	dataDirName    = "..data"
	newDataDirName = "..data_tmp"
)

// writeVolume brings dir to hold exactly files (relative paths → content)
// the way the kubelet's AtomicWriter does:
//
//	dir/..2006_01_02_15_04_05.NNNN/<files>   a new timestamped directory
//	dir/..data -> ..2006_...                  swapped by rename(2)
//	dir/<key>  -> ..data/<key>                visible files are symlinks
//
// so a reader sees the old set or the new set, never a mix, and a
// directory watcher sees the swap. It returns false when dir already held
// files and nothing was written.
func writeVolume(dir string, files map[string][]byte, mode os.FileMode) (bool, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	oldTS, _ := os.Readlink(filepath.Join(dir, dataDirName))
	if oldTS != "" && sameContent(filepath.Join(dir, oldTS), files) {
		return false, nil
	}

	// 1. The new payload in a fresh timestamped directory.
	tsDir, err := os.MkdirTemp(dir, time.Now().UTC().Format("..2006_01_02_15_04_05."))
	if err != nil {
		return false, err
	}
	if err := os.Chmod(tsDir, 0o755); err != nil {
		return false, err
	}
	for rel, data := range files {
		p := filepath.Join(tsDir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return false, err
		}
		if err := os.WriteFile(p, data, mode); err != nil {
			return false, err
		}
	}
	// 2. ..data_tmp -> the new directory, 3. renamed over ..data.
	tmpLink := filepath.Join(dir, newDataDirName)
	_ = os.Remove(tmpLink)
	if err := os.Symlink(filepath.Base(tsDir), tmpLink); err != nil {
		return false, err
	}
	if err := os.Rename(tmpLink, filepath.Join(dir, dataDirName)); err != nil {
		return false, err
	}
	// 4. Visible symlinks for new top-level names.
	top := map[string]bool{}
	for rel := range files {
		top[strings.SplitN(filepath.ToSlash(rel), "/", 2)[0]] = true
	}
	for name := range top {
		link := filepath.Join(dir, name)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join(dataDirName, name), link); err != nil {
			return false, err
		}
	}
	// 5. The old payload goes, 6. and so do names it alone had.
	if oldTS != "" {
		if err := os.RemoveAll(filepath.Join(dir, oldTS)); err != nil {
			return false, err
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false, err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "..") || top[e.Name()] {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			return false, err
		}
	}
	return true, nil
}

// sameContent reports whether dir holds exactly files.
func sameContent(dir string, files map[string][]byte) bool {
	n := 0
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		want, ok := files[rel]
		if !ok {
			return fmt.Errorf("extra file %s", rel)
		}
		got, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, want) {
			return fmt.Errorf("%s differs", rel)
		}
		n++
		return nil
	})
	return err == nil && n == len(files)
}

// sortedKeys is for deterministic logs.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

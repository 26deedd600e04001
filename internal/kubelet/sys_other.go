//go:build !linux

package kubelet

import (
	"os"
	"syscall"
)

func dieWithParent(*syscall.SysProcAttr) {}

// lockFile does no locking off Linux (where 127.0.0.N beyond 127.0.0.1 is
// usually not routed anyway).
func lockFile(path string) (*os.File, bool) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	return f, err == nil
}

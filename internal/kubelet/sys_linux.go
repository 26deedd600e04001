package kubelet

import (
	"os"
	"syscall"
)

// dieWithParent has the broker killed when the test process dies, so no
// broker outlives a crashed or killed test run.
func dieWithParent(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }

// lockFile takes an exclusive, non-blocking lock on path; the lock lasts
// until the file is closed (or the process ends).
func lockFile(path string) (*os.File, bool) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, false
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, false
	}
	return f, true
}

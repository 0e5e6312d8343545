//go:build unix

package store

import (
	"os"
	"syscall"
)

// lockRoot takes an exclusive flock on the directory dir and returns its
// release. The lock belongs to the open directory, so a process that dies
// holding it frees it, and it leaves no file behind.
func lockRoot(dir string) (release func(), err error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() { _ = f.Close() }, nil
}

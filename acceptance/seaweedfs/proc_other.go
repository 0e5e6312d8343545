//go:build !linux

package seaweedfs

import "syscall"

// processAttributes puts weed in a process group of its own, which Stop
// signals whole.
func processAttributes() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

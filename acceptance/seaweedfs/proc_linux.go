package seaweedfs

import "syscall"

// processAttributes puts weed in a process group of its own, which Stop
// signals whole, and has the kernel kill it if the test process dies
// first (a test binary killed at its timeout runs no clean-up).
func processAttributes() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

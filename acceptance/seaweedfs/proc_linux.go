package seaweedfs

import "syscall"

// processAttributes puts weed in a process group of its own, which Stop
// signals whole, and has the kernel kill it if the test process dies
// first (a test binary killed at its timeout runs no clean-up). The kernel
// ties that signal to the thread that started weed, not to the process:
// should the Go runtime retire that thread first, weed is killed early,
// and the suite fails loudly rather than leaving weed behind. The runtime
// does not retire threads in these tests.
func processAttributes() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

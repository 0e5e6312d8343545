//go:build !linux || 386

package proxy

import "net"

// loop is an event loop. There are none but on Linux (epoll; not on 386,
// whose system calls differ): every connection gets its goroutine.
type loop struct{}

func (s *Server) adopt(net.Conn) bool { return false }

func (s *Server) wakeLoops() {}

func newSockConn(nc net.Conn) net.Conn { return nc }

package proxy

import (
	"context"
	"errors"
	"net"
	"sync"
	"syscall"
	"time"
)

// errClientGone is the failure of an exchange whose client hung up.
var errClientGone = errors.New("the client went away")

// aLongTimeAgo is a deadline in the past: setting it wakes a blocked read
// or write at once.
var aLongTimeAgo = time.Unix(1, 0)

// clientWatch watches a client connection for a hang-up while its request
// is upstream, and aborts the exchange when it sees one. It starts only
// once the exchange has run for clientWatchDelay (one timer per
// connection, reset per request), so a scrape answered sooner costs no
// extra read or goroutine.
type clientWatch struct {
	c     *serverConn
	timer *time.Timer

	mu       sync.Mutex
	stopped  bool               // no exchange in flight: the timer must do nothing
	active   bool               // run is peeking at the client connection
	exited   chan struct{}      // closed when the active run returns
	gone     bool               // the client hung up
	upstream *conn              // the exchange's upstream connection, to abort
	dial     context.CancelFunc // cancels the exchange's dial, to abort
}

// start arms the watch for a new exchange.
func (w *clientWatch) start() {
	w.mu.Lock()
	w.stopped, w.gone, w.upstream, w.dial = false, false, nil, nil
	w.mu.Unlock()
	if w.timer == nil {
		w.timer = time.AfterFunc(clientWatchDelay, w.run)
	} else {
		w.timer.Reset(clientWatchDelay)
	}
}

// stop disarms the watch and waits until a running one has returned: after
// it, nothing aborts the exchange's upstream connection.
func (w *clientWatch) stop() {
	w.timer.Stop()
	w.mu.Lock()
	w.stopped, w.upstream, w.dial = true, nil, nil
	active, exited := w.active, w.exited
	w.mu.Unlock()
	if active {
		_ = w.c.nc.SetReadDeadline(aLongTimeAgo)
		<-exited
		w.c.readBy = time.Time{} // set again before the next read
	}
}

// attach names the exchange's upstream connection, or its dial's cancel
// function, for an abort. It reports false when the client is gone already.
func (w *clientWatch) attach(pc *conn, dial context.CancelFunc) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.upstream, w.dial = pc, dial
	return !w.gone
}

// setDeadline sets pc's deadline (read and write, or read only) unless
// the client is gone: an abort is never undone by a later deadline.
func (w *clientWatch) setDeadline(pc *conn, t time.Time, write bool) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.gone {
		return false
	}
	if write {
		_ = pc.SetDeadline(t)
	} else {
		_ = pc.SetReadDeadline(t)
	}
	return true
}

// isGone reports whether the client hung up.
func (w *clientWatch) isGone() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.gone
}

func (w *clientWatch) run() {
	w.mu.Lock()
	if w.stopped || w.active || w.c.br.Buffered() > 0 {
		// Nothing in flight, or already watched, or the client has sent
		// its next request: it is there.
		w.mu.Unlock()
		return
	}
	w.active = true
	w.exited = make(chan struct{})
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.active = false
		close(w.exited)
		w.mu.Unlock()
	}()
	if !hungUp(w.c.nc) {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.gone = true
	if w.upstream != nil {
		_ = w.upstream.SetDeadline(aLongTimeAgo)
	}
	if w.dial != nil {
		w.dial()
	}
}

// hungUp waits until the connection is readable and reports whether that
// is because the peer closed it (EOF or a reset), without consuming any
// data. It returns false when the wait is cut short by a read deadline.
func hungUp(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var (
		buf  [1]byte
		n    int
		rerr error
	)
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return !errors.Is(rerr, syscall.EAGAIN)
	})
	if err != nil {
		// Cut short by stop (a deadline), or the connection was closed
		// under it (Close, or Shutdown out of time): then nobody is there.
		return errors.Is(err, net.ErrClosed)
	}
	return n == 0 && rerr == nil || errors.Is(rerr, syscall.ECONNRESET)
}

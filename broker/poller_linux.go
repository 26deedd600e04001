package broker

import (
	"errors"
	"net"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// poller parks idle plain-TCP connections in an epoll set instead of in a
// goroutine each: an idle client then costs only its heap objects, not a
// goroutine stack (≥ 4 KB, which cannot shrink below that while blocked in
// a read). When the socket turns readable, a goroutine is started for the
// burst and the connection is re-armed when the burst is done.
//
// The fd is also registered (edge-triggered) with Go's own netpoller; a
// second epoll instance watching it is fine. EPOLLONESHOT guarantees one
// wake-up per arming, and level-triggered re-arming fires at once when bytes
// arrived meanwhile, so no wake-up is lost.
type poller struct {
	epfd int
	// stopfd is an eventfd in the set that tells the loop to close the
	// epoll descriptor itself: closing it from outside could let its number
	// be reused by another poller while this loop is about to wait on it.
	stopfd int
	// mu guards clients.
	mu      sync.Mutex
	clients map[int32]*client
}

func newPoller() *poller {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil // goroutine per connection, as on other systems
	}
	stop, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(fd)
		return nil
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(stop)}
	if err := unix.EpollCtl(fd, unix.EPOLL_CTL_ADD, stop, &ev); err != nil {
		unix.Close(fd)
		unix.Close(stop)
		return nil
	}
	p := &poller{epfd: fd, stopfd: stop, clients: make(map[int32]*client)}
	go p.loop()
	return p
}

// fdOf returns the socket of a plain TCP connection; ok is false for
// anything wrapped (TLS, WebSocket), which keeps a reader goroutine.
func fdOf(conn net.Conn) (int32, bool) {
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		return 0, false
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return 0, false
	}
	var fd int32 = -1
	if err := rc.Control(func(f uintptr) { fd = int32(f) }); err != nil || fd < 0 {
		return 0, false
	}
	return fd, true
}

// register adds c's socket to the set with no events armed yet. The caller
// holds c.life.running: it may write c.life.registered.
func (p *poller) register(c *client) bool {
	p.mu.Lock()
	p.clients[c.fd] = c
	p.mu.Unlock()
	ev := unix.EpollEvent{Fd: c.fd}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, int(c.fd), &ev); err != nil && !errors.Is(err, syscall.EEXIST) {
		p.forget(c)
		return false
	}
	c.life.registered = true
	return true
}

// arm asks for one wake-up when c's socket turns readable. It is called
// after c.life.running was released, so it touches nothing but the immutable fd.
func (p *poller) arm(c *client) bool {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: c.fd}
	return unix.EpollCtl(p.epfd, unix.EPOLL_CTL_MOD, int(c.fd), &ev) == nil
}

// forget removes c; its fd number may be reused by a later connection.
func (p *poller) forget(c *client) {
	p.mu.Lock()
	if p.clients[c.fd] == c {
		delete(p.clients, c.fd)
		_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, int(c.fd), nil)
	}
	p.mu.Unlock()
}

// close stops the loop, which then closes the descriptors.
func (p *poller) close() {
	var one = [8]byte{1}
	_, _ = unix.Write(p.stopfd, one[:])
}

func (p *poller) loop() {
	defer func() {
		unix.Close(p.epfd)
		unix.Close(p.stopfd)
	}()
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			return
		}
		p.mu.Lock()
		for i := 0; i < n; i++ {
			fd := events[i].Fd
			if int(fd) == p.stopfd {
				p.mu.Unlock()
				return
			}
			if c := p.clients[fd]; c != nil {
				c.wake()
			}
		}
		p.mu.Unlock()
	}
}

package pgtest

import (
	"net"
	"sync"
	"testing"
)

// StallingProxy forwards TCP connections to a server until [StallingProxy.Stall],
// after which it forwards nothing more and holds the connections open
// until [StallingProxy.Release]: a server that stops answering, without
// signalling its process; [StallingProxy.Resume] lets it answer again.
// Point a connection string at its Addr.
type StallingProxy struct {
	net.Listener
	target string

	mu                sync.Mutex
	stalled, released chan struct{} // closed by Stall and Release
}

// NewStallingProxy listens on a free port of 127.0.0.1 for connections to
// target (host:port); it stops, and releases what it holds, when the test
// ends.
func NewStallingProxy(tb testing.TB, target string) *StallingProxy {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &StallingProxy{Listener: l, target: target}
	p.stalled, p.released = make(chan struct{}), make(chan struct{})
	tb.Cleanup(func() { l.Close(); p.Release() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go p.forward(c)
		}
	}()
	return p
}

// Stall stops forwarding, in both directions, on every connection.
func (p *StallingProxy) Stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	closeOnce(p.stalled)
}

// Stalled reports whether Stall was called (since the last Resume).
func (p *StallingProxy) Stalled() bool {
	stalled, _ := p.state()
	return isClosed(stalled)
}

// Release closes the connections a stall holds; new connections are
// closed at once until Resume.
func (p *StallingProxy) Release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	closeOnce(p.released)
}

// Resume releases what a stall holds, and forwards new connections
// again: a server that answers again after an outage.
func (p *StallingProxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	closeOnce(p.released)
	p.stalled, p.released = make(chan struct{}), make(chan struct{})
}

func (p *StallingProxy) state() (stalled, released chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stalled, p.released
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func closeOnce(c chan struct{}) {
	if !isClosed(c) {
		close(c)
	}
}

// forward copies between c and a new connection to the server, a read at
// a time, holding what it read once stalled.
func (p *StallingProxy) forward(c net.Conn) {
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	pipe := func(dst, src net.Conn) {
		defer dst.Close() // and so the other direction ends too
		defer src.Close()
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			stalled, released := p.state()
			select {
			case <-stalled:
				<-released // hold it, and the connections
				return
			default:
			}
			if n > 0 {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	go pipe(s, c)
	pipe(c, s)
}

package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/domicile-go/domicile/residency/postgres/pgtest"
)

// TestHungDatabaseIsAnswered: while the database server stops answering
// altogether (not a lock: reads hang too, so the Router's reading back of
// a failed write takes its own write timeout), a POST still gets an
// answer (503) before the server's WriteTimeout, not a connection closed
// without a response.
func TestHungDatabaseIsAnswered(t *testing.T) {
	dsn := pgtest.DatabaseURL(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newHangingProxy(t, u.Host)
	u.Host = proxy.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, "127.0.0.1:0", u.String(), func(a net.Addr) { addrc <- a }) }()
	var addr net.Addr
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatal(err)
	}
	defer func() {
		proxy.release()
		cancel()
		<-done // Close may fail with the database gone; only its return matters here
	}()
	base := "http://" + addr.String()
	if status, _ := do(t, "POST", base+"/accounts", `{"account_id": "before", "country": "DE"}`); status != http.StatusCreated {
		t.Fatalf("POST before = %d, want 201", status)
	}

	proxy.hang()
	client := &http.Client{Timeout: 2 * time.Minute}
	resp, err := client.Post(base+"/accounts", "application/json", strings.NewReader(`{"account_id": "stuck", "country": "DE"}`))
	if err != nil {
		t.Fatalf("POST while the database does not answer: no answer: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("POST while the database does not answer = %d %s, want 503", resp.StatusCode, body)
	}
}

// hangingProxy forwards TCP connections to a server until hang, after
// which it forwards nothing more and holds the connections open until
// release: a server that stops answering.
type hangingProxy struct {
	net.Listener
	target            string
	hung, released    chan struct{}
	hangOnce, relOnce sync.Once
}

func newHangingProxy(t *testing.T, target string) *hangingProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &hangingProxy{Listener: l, target: target, hung: make(chan struct{}), released: make(chan struct{})}
	t.Cleanup(func() { l.Close(); p.release() })
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

func (p *hangingProxy) hang()    { p.hangOnce.Do(func() { close(p.hung) }) }
func (p *hangingProxy) release() { p.relOnce.Do(func() { close(p.released) }) }

func (p *hangingProxy) forward(c net.Conn) {
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	pipe := func(dst, src net.Conn) {
		defer dst.Close()
		defer src.Close()
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			select {
			case <-p.hung:
				<-p.released
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

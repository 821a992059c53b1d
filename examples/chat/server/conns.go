package server

import (
	"net"
	"sync"
)

// A client that opens connections and never finishes a request holds a
// goroutine and a socket each; the timeouts of Serve end every such
// connection eventually, and these caps bound how many one client holds
// meanwhile: connections per client address at the listener (before any
// byte is read), and requests in progress per account, WebSocket
// connections included, in authed.

// counter counts what is open per key and refuses past max. Keys with
// nothing open are deleted, so the map is as large as what is open.
type counter struct {
	max int
	mu  sync.Mutex
	n   map[string]int
}

func newCounter(max int) *counter { return &counter{max: max, n: make(map[string]int)} }

// acquire counts one more for key, unless key has max already.
func (c *counter) acquire(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[key] >= c.max {
		return false
	}
	c.n[key]++
	return true
}

func (c *counter) release(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[key]--; c.n[key] <= 0 {
		delete(c.n, key)
	}
}

// capListener closes, as soon as they are accepted, connections from a
// client address (grouped like the rate limits) that already has
// MaxConnsPerIP open.
type capListener struct {
	net.Listener
	s *Server
}

func (l *capListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := addrKey(c.RemoteAddr().String(), l.s.cfg.IPv4Prefix, l.s.cfg.IPv6Prefix)
		if !l.s.ipConns.acquire(key) {
			c.Close()
			l.s.log.Debug("connection refused: too many from its address")
			continue
		}
		return &cappedConn{Conn: c, release: sync.OnceFunc(func() { l.s.ipConns.release(key) })}, nil
	}
}

// cappedConn gives its address's count back when closed, however often.
type cappedConn struct {
	net.Conn
	release func()
}

func (c *cappedConn) Close() error {
	c.release()
	return c.Conn.Close()
}

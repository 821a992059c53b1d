package server

import (
	"context"
	"net/netip"
	"sync"
	"time"
)

// limiter is a token bucket per key, in memory, for one process (the
// SQLite backend; pgLimiter is the shared one): each key may spend burst
// requests at once and earns them back at rate per second. Buckets that have refilled
// completely carry no information and are dropped when the map grows, so
// a stream of new keys cannot grow it without bound for long.
type limiter struct {
	rate  float64
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// maxBuckets is the map size at which full buckets are swept.
const maxBuckets = 10000

func newLimiter(rate float64, burst int, now func() time.Time) *limiter {
	return &limiter{rate: rate, burst: float64(burst), now: now, buckets: make(map[string]*bucket)}
}

// allow takes one token from key's bucket. If none is left it returns false
// and how long until one will be.
func (l *limiter) allow(_ context.Context, key string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= maxBuckets {
			l.sweep(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	if l.rate <= 0 {
		return false, time.Hour
	}
	wait := time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
	return false, wait
}

func (l *limiter) sweep(now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.buckets, k)
		}
	}
}

// addrKey is the key that limits per client address use for the address
// in remoteAddr (host:port, as in http.Request.RemoteAddr): the address
// masked to v4Bits for IPv4 and v6Bits for IPv6. One IPv6 host usually
// holds a whole /64 and can use any address in it, so keying on the full
// address would give it 2^64 budgets; a /64 is what one subscriber gets.
// IPv4-mapped IPv6 addresses count as IPv4, and zones are ignored. An
// address that does not parse is its own key.
func addrKey(remoteAddr string, v4Bits, v6Bits int) string {
	ap, err := netip.ParseAddrPort(remoteAddr)
	var a netip.Addr
	if err == nil {
		a = ap.Addr()
	} else if a, err = netip.ParseAddr(remoteAddr); err != nil {
		return remoteAddr
	}
	a = a.Unmap().WithZone("")
	bits := v6Bits
	if a.Is4() {
		bits = v4Bits
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return a.String()
	}
	return p.String()
}

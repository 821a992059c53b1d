package client

import (
	"errors"
	"time"

	"github.com/ratchetkit/ratchetkit/examples/chat/api"
)

// Defaults of the Config limits.
const (
	defaultMaxHeld            = 100
	defaultMaxHeldBytes       = 1 << 20
	defaultFailedDecryptBurst = 10
	defaultFailedDecryptRate  = 0.2
)

// setLimits fills in the defaults of the abuse limits and checks them.
func (cfg *Config) setLimits() error {
	if cfg.MaxEnvelopeSize <= 0 {
		cfg.MaxEnvelopeSize = api.MaxEnvelopeSize
	}
	if cfg.MaxHeld <= 0 {
		cfg.MaxHeld = defaultMaxHeld
	}
	if cfg.MaxHeldBytes <= 0 {
		cfg.MaxHeldBytes = defaultMaxHeldBytes
	}
	if cfg.MaxHeldBytes < int64(cfg.MaxEnvelopeSize) {
		// The envelope that reports the identity change must fit.
		return errors.New("client: MaxHeldBytes below MaxEnvelopeSize")
	}
	if cfg.FailedDecryptBurst <= 0 {
		cfg.FailedDecryptBurst = defaultFailedDecryptBurst
	}
	if cfg.FailedDecryptRate <= 0 {
		cfg.FailedDecryptRate = defaultFailedDecryptRate
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	return nil
}

// limiter rations failures per peer as a virtual clock (the generic cell
// rate algorithm, equivalent to a token bucket): each failure moves the
// peer's clock 1/rate ahead, never starting from before now, and the peer
// is allowed while its clock is less than burst/rate ahead of now. One
// time per peer is all it keeps, and a peer whose clock is behind now is
// indistinguishable from one never seen, so those entries are swept when
// the map grows: a stream of new names cannot grow it for long.
//
// Only procMu's holder uses it, so it has no lock of its own.
type limiter struct {
	step   time.Duration // 1/rate
	window time.Duration // burst/rate
	now    func() time.Time
	ahead  map[string]time.Time
}

// maxLimited is the map size at which entries are swept.
const maxLimited = 4096

func newLimiter(rate float64, burst int, now func() time.Time) *limiter {
	step := max(time.Duration(float64(time.Second)/rate), 1)
	return &limiter{step: step, window: time.Duration(burst) * step, now: now, ahead: make(map[string]time.Time)}
}

// allowed reports whether peer may cause one more failure now.
func (l *limiter) allowed(peer string) bool {
	t, ok := l.ahead[peer]
	return !ok || t.Sub(l.now()) < l.window
}

// take records one failure of peer.
func (l *limiter) take(peer string) {
	now := l.now()
	t, ok := l.ahead[peer]
	if !ok && len(l.ahead) >= maxLimited {
		for p, pt := range l.ahead {
			if !pt.After(now) {
				delete(l.ahead, p)
			}
		}
	}
	if !ok || t.Before(now) {
		t = now
	}
	l.ahead[peer] = t.Add(l.step)
}

package spqr

import (
	"errors"
	"fmt"

	"github.com/ratchetkit/ratchetkit/internal/kdf"
)

// SPQR's chains across epochs: the first epoch's chains (Start) and one
// pair more for every epoch secret the braid produces (Add Epoch), each
// direction with SPQR's out-of-order key history.
//
//	add epoch: HKDF-SHA256(salt = next root, ikm = epoch secret,
//	               "Signal PQ Ratchet V1 Chain Add Epoch", 96)
//	           = next root (32) || A2B chain (32) || B2A chain (32)
//
// Chain epochs count from 0 (the PQR key's); a message of wire epoch e
// takes its key from chain epoch e − 1, and the braid's secret of epoch e
// becomes chain epoch e.

var addEpochInfo = []byte("Signal PQ Ratchet V1 Chain Add Epoch")

// MaxOOOKeys is SPQR's max_ooo_keys: a receiving chain keeps the keys it
// skipped back to this many indexes behind its newest, so a message this
// much older than the newest still decrypts. libsignal 0.103 measured the
// same 2 000 (internal/signalsuite's TestLiveLimits).
const MaxOOOKeys = 2000

// historyTrim is the history length at which the keys older than
// MaxOOOKeys are dropped (SPQR's trim size, max_ooo_keys·11/10 + 1). It
// only bounds memory: keys that old are refused whether dropped or not.
const historyTrim = MaxOOOKeys*11/10 + 1

var (
	// ErrEpochOutOfRange is returned for an epoch the chains do not have
	// (yet, or any more).
	ErrEpochOutOfRange = errors.New("spqr: epoch out of range")
	// ErrEpochDecreased is returned by SendKey for an epoch below one it
	// sent in already.
	ErrEpochDecreased = errors.New("spqr: sending epoch decreased")
	// ErrKeyTrimmed is returned by RecvKey for an index more than MaxOOOKeys
	// behind the newest.
	ErrKeyTrimmed = errors.New("spqr: key too old")
	// ErrKeyUsed is returned by RecvKey for an index whose key was given
	// out already: a replay.
	ErrKeyUsed = errors.New("spqr: key already used")
	// ErrNoKey is returned by RecvKey for index 0 of epoch 0, which SPQR
	// reserves for messages that carry no key.
	ErrNoKey = errors.New("spqr: message carries no key")
	// errEpochSequence is returned by AddEpoch out of sequence.
	errEpochSequence = errors.New("spqr: epoch secret out of sequence")
)

// skippedKey is a receiving key kept for an out-of-order message.
type skippedKey struct {
	index uint32
	key   [KeySize]byte
}

// receiving is one epoch's receiving chain and its history.
type receiving struct {
	Chain
	history []skippedKey
}

type epochLinks struct {
	send     Chain
	sendLive bool // false once a later epoch has been sent in
	recv     receiving
}

// Chains is the state of SPQR's symmetric chains for one party. It is
// secret.
type Chains struct {
	dir       Direction // this party's sending direction
	current   uint64    // the newest chain epoch
	sendEpoch uint64
	links     []*epochLinks // chain epochs current−len(links)+1 … current
	nextRoot  [KeySize]byte
}

// NewChains starts the chains from the PQR key, for the party that sends
// in direction dir (AToB for the initiator).
func NewChains(pqrKey *[KeySize]byte, dir Direction) *Chains {
	e := Start(pqrKey)
	c := &Chains{dir: dir, nextRoot: e.NextRoot}
	c.links = []*epochLinks{{send: e.chains[dir], sendLive: true, recv: receiving{Chain: e.chains[1-dir]}}}
	e.Clear()
	return c
}

// Epoch returns the newest chain epoch.
func (c *Chains) Epoch() uint64 { return c.current }

// AddEpoch adds the chains of the braid's secret for epoch, which must be
// one past the newest.
func (c *Chains) AddEpoch(epoch uint64, secret []byte) error {
	if epoch != c.current+1 {
		return errEpochSequence
	}
	var out [3 * KeySize]byte
	h := kdf.Get()
	var salt kdf.Key
	h.SetKey(&salt, c.nextRoot[:])
	h.HKDF(out[:], &salt, secret, addEpochInfo)
	salt.Clear()
	kdf.Put(h)
	var chains [2]Chain
	copy(c.nextRoot[:], out[:KeySize])
	copy(chains[AToB].key[:], out[KeySize:2*KeySize])
	copy(chains[BToA].key[:], out[2*KeySize:])
	clear(out[:])
	c.current = epoch
	c.links = append(c.links, &epochLinks{send: chains[c.dir], sendLive: true, recv: receiving{Chain: chains[1-c.dir]}})
	return nil
}

func (c *Chains) link(epoch uint64) (int, error) {
	if epoch > c.current || c.current-epoch >= uint64(len(c.links)) {
		return 0, ErrEpochOutOfRange
	}
	return len(c.links) - 1 - int(c.current-epoch), nil
}

// SendKey returns the next index and key of epoch's sending chain. Moving
// to a later epoch drops all epochs but the one before it, and the sending
// chains of those before it: SPQR never sends in an earlier epoch again.
func (c *Chains) SendKey(epoch uint64) (uint32, [KeySize]byte, error) {
	if epoch < c.sendEpoch {
		return 0, [KeySize]byte{}, ErrEpochDecreased
	}
	i, err := c.link(epoch)
	if err != nil {
		return 0, [KeySize]byte{}, err
	}
	if epoch != c.sendEpoch {
		c.sendEpoch = epoch
		for ; i > 1; i-- {
			c.links[0].clear()
			c.links = c.links[1:]
		}
		for j := range i {
			c.links[j].send.Clear()
			c.links[j].sendLive = false
		}
	}
	l := c.links[i]
	if !l.sendLive || l.send.index == 1<<32-1 {
		return 0, [KeySize]byte{}, ErrEpochOutOfRange
	}
	k := l.send.Next()
	return l.send.index, k, nil
}

// RecvKey returns the key of index in epoch's receiving chain without
// changing c, and the function that commits it: the caller calls commit
// only once the message has decrypted, so a forged message changes
// nothing. Skipping ahead (at most MaxJump) keeps the skipped keys within
// MaxOOOKeys of the new index; an older index takes its key out of the
// history, once.
func (c *Chains) RecvKey(epoch uint64, index uint32) (key [KeySize]byte, commit func(), err error) {
	if epoch == 0 && index == 0 {
		return key, nil, ErrNoKey
	}
	i, err := c.link(epoch)
	if err != nil {
		return key, nil, err
	}
	r := &c.links[i].recv
	switch {
	case index == r.index:
		return key, nil, ErrKeyUsed
	case index < r.index:
		if uint64(index)+MaxOOOKeys < uint64(r.index) {
			return key, nil, ErrKeyTrimmed
		}
		for j, s := range r.history {
			if s.index == index {
				return s.key, func() {
					last := len(r.history) - 1
					r.history[j] = r.history[last]
					clear(r.history[last].key[:])
					r.history = r.history[:last]
				}, nil
			}
		}
		return key, nil, ErrKeyUsed
	}
	if index-r.index > MaxJump {
		return key, nil, ErrTooFar
	}
	next := r.Chain
	var skipped []skippedKey
	for next.index+1 < index {
		k := next.Next()
		if uint64(next.index)+MaxOOOKeys >= uint64(index) {
			skipped = append(skipped, skippedKey{next.index, k})
		}
	}
	key = next.Next()
	return key, func() {
		if uint64(index) > uint64(r.index)+MaxOOOKeys {
			r.clearHistory()
		}
		r.history = append(r.history, skipped...)
		if len(r.history) >= historyTrim {
			r.trim(index - 1)
		}
		r.Chain = next
	}, nil
}

// trim drops the keys more than MaxOOOKeys behind newest.
func (r *receiving) trim(newest uint32) {
	if newest < MaxOOOKeys {
		return
	}
	horizon := newest - MaxOOOKeys
	kept := r.history[:0]
	for _, s := range r.history {
		if s.index >= horizon {
			kept = append(kept, s)
		}
	}
	for j := len(kept); j < len(r.history); j++ {
		clear(r.history[j].key[:])
	}
	r.history = kept
}

func (r *receiving) clearHistory() {
	for j := range r.history {
		clear(r.history[j].key[:])
	}
	r.history = r.history[:0]
}

func (l *epochLinks) clear() {
	l.send.Clear()
	l.recv.Clear()
	l.recv.clearHistory()
}

// Clear wipes every key c holds.
func (c *Chains) Clear() {
	for _, l := range c.links {
		l.clear()
	}
	clear(c.nextRoot[:])
}

// String keeps the keys out of every fmt verb.
func (Chains) String() string { return "spqr.Chains{REDACTED}" }

// Format prints String whatever the verb.
func (c Chains) Format(f fmt.State, _ rune) { fmt.Fprint(f, c.String()) }

// canSend reports whether SendKey(epoch) would succeed, without changing
// c.
func (c *Chains) canSend(epoch uint64) bool {
	if epoch < c.sendEpoch {
		return false
	}
	i, err := c.link(epoch)
	if err != nil {
		return false
	}
	l := c.links[i]
	return l.sendLive && l.send.index != 1<<32-1
}

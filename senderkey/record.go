package senderkey

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/ratchetkit/ratchetkit/internal/signalsuite"
	"github.com/ratchetkit/ratchetkit/internal/signalwire"
	"github.com/ratchetkit/ratchetkit/keys"
)

// libsignal's bounds (rust/protocol/src/consts.rs).
const (
	// MaxForwardJump is how many iterations one message may skip: a message
	// more than MaxForwardJump past the chain's next iteration is refused.
	// Skipping costs two HMACs per iteration, so a hostile message buys at
	// most about 25 000 of them.
	MaxForwardJump = 25000
	// MaxSkippedKeys is how many keys of skipped messages a chain keeps; the
	// oldest are dropped first.
	MaxSkippedKeys = 2000
	// MaxStates is how many chains a record keeps per sender and
	// distribution id; the least recently distributed is dropped first.
	MaxStates = 5
)

var (
	// ErrNoState means the record holds no chain for the message: its
	// distribution message was never processed, or the chain was dropped.
	ErrNoState = errors.New("senderkey: no sender key state for the message's chain")
	// ErrInvalidSignature means the message is not signed by its chain's
	// signing key.
	ErrInvalidSignature = errors.New("senderkey: invalid signature")
	// ErrDuplicate means the message's key was used already (or dropped as
	// too old); callers usually drop such messages silently.
	ErrDuplicate = errors.New("senderkey: duplicate message")
	// ErrTooFarInFuture means the message skips more than MaxForwardJump
	// iterations.
	ErrTooFarInFuture = errors.New("senderkey: message from too far into the future")
	// ErrDecrypt means a correctly signed ciphertext did not decrypt: only
	// the sender itself can make one.
	ErrDecrypt = errors.New("senderkey: decryption failed")
	// ErrNoSendingState means the record holds no chain of our own to send
	// on.
	ErrNoSendingState = errors.New("senderkey: no sending chain")
	// ErrChainExhausted means the chain has reached its last iteration
	// (2³² − 1); rotate.
	ErrChainExhausted = errors.New("senderkey: sender chain is too long")
)

// Record is one sender's sender-key state for one distribution id, as a
// member or as the sender itself keeps it. The zero value is an empty
// record. A Record is not safe for concurrent use.
type Record struct {
	states []*state // newest first
}

// state is one sender chain.
type state struct {
	chainID   uint32
	iteration uint32
	chainKey  [32]byte
	signPub   *keys.PublicKey
	signPriv  *keys.IdentityKeyPair // the sender's own chain only
	skipped   []skippedKey          // ascending iterations, all below iteration
}

// skippedKey is the seed of a message not yet received, expanded when used.
type skippedKey struct {
	iteration uint32
	seed      [32]byte
}

// DistributionMessage returns the distribution message of the record's
// newest chain, after making one if the record is empty: a fresh chain key,
// a random 31-bit chain id and a fresh signing key pair, as libsignal's
// SenderKeyDistributionMessage.create. To rotate, drop the record and call
// this on an empty one.
func (r *Record) DistributionMessage(id DistributionID) (*DistributionMessage, error) {
	if len(r.states) == 0 {
		signer, err := keys.GenerateIdentityKeyPair()
		if err != nil {
			return nil, err
		}
		s := &state{signPub: signer.PublicKey(), signPriv: signer}
		var c [4]byte
		rand.Read(c[:])
		s.chainID = binary.BigEndian.Uint32(c[:]) >> 1
		rand.Read(s.chainKey[:])
		r.states = []*state{s}
	}
	s := r.states[0]
	return &DistributionMessage{DistributionID: id, ChainID: s.chainID, Iteration: s.iteration, ChainKey: s.chainKey, SigningKey: s.signPub}, nil
}

// Process adds the chain of a member's distribution message, newest first,
// as libsignal does: a chain already held with the same id and signing key
// is kept as it is (processing a message again rewinds nothing), one with
// the same id and another key is dropped, and beyond MaxStates the oldest
// chain goes.
func (r *Record) Process(m *DistributionMessage) {
	var existing *state
	kept := make([]*state, 0, MaxStates)
	for _, s := range r.states {
		if s.chainID == m.ChainID {
			if existing == nil && s.signPub.Equal(m.SigningKey) {
				existing = s
			} else {
				s.clear()
			}
			continue
		}
		kept = append(kept, s)
	}
	if existing == nil {
		existing = &state{chainID: m.ChainID, iteration: m.Iteration, chainKey: m.ChainKey, signPub: m.SigningKey}
	}
	for len(kept) >= MaxStates {
		kept[len(kept)-1].clear()
		kept = kept[:len(kept)-1]
	}
	r.states = append([]*state{existing}, kept...)
}

// Encrypt returns the group message of plaintext on the record's newest
// chain, which must be our own (made by DistributionMessage), and advances
// the chain.
func (r *Record) Encrypt(id DistributionID, plaintext []byte) ([]byte, error) {
	if len(r.states) == 0 || r.states[0].signPriv == nil {
		return nil, ErrNoSendingState
	}
	s := r.states[0]
	if s.iteration == math.MaxUint32 {
		return nil, ErrChainExhausted
	}
	seed, next := chainStep(&s.chainKey)
	mk := deriveMessageKey(&seed)
	clear(seed[:])
	w := signalwire.SenderKeyMessage{DistributionID: id[:], ChainID: s.chainID, Iteration: s.iteration,
		Ciphertext: signalsuite.EncryptCBC(&mk.key, &mk.iv, plaintext)}
	mk.clear()
	out, err := w.AppendBody(make([]byte, 0, 32+len(w.Ciphertext)+signalwire.SenderKeySignatureSize))
	if err != nil {
		panic("senderkey: " + err.Error()) // the id is an array of the right size
	}
	out = append(out, s.signPriv.Sign(out)...)
	s.chainKey = next
	clear(next[:])
	s.iteration++
	return out, nil
}

// Decrypt verifies and decrypts a group message of this record's sender,
// in any order within the bounds. It changes the record only when it
// succeeds: on any error the record is as it was.
func (r *Record) Decrypt(msg []byte) ([]byte, error) {
	w, body, sig, err := signalwire.ParseSenderKeyMessage(msg)
	if err != nil {
		return nil, malformed(err)
	}
	var s *state
	for _, x := range r.states {
		if x.chainID == w.ChainID {
			s = x
			break
		}
	}
	if s == nil {
		return nil, ErrNoState
	}
	if !s.signPub.Verify(body, sig) {
		return nil, ErrInvalidSignature
	}

	// Find the message's seed without touching s; the changes are applied
	// below only once the ciphertext has decrypted.
	var seed, nextChain [32]byte
	var fresh []skippedKey
	used := -1
	if w.Iteration < s.iteration {
		i, found := slices.BinarySearchFunc(s.skipped, w.Iteration, func(k skippedKey, it uint32) int {
			return cmpUint32(k.iteration, it)
		})
		if !found {
			return nil, ErrDuplicate
		}
		used, seed = i, s.skipped[i].seed
	} else {
		jump := w.Iteration - s.iteration
		if jump > MaxForwardJump {
			return nil, ErrTooFarInFuture
		}
		if w.Iteration == math.MaxUint32 {
			return nil, ErrChainExhausted
		}
		// Only the newest MaxSkippedKeys seeds of the walk can survive, so
		// only they are kept: the buffer is bounded whatever the jump.
		if jump > 0 {
			fresh = make([]skippedKey, 0, min(jump, MaxSkippedKeys))
		}
		ck := s.chainKey
		for it := s.iteration; it < w.Iteration; it++ {
			sd, nx := chainStep(&ck)
			if w.Iteration-it <= MaxSkippedKeys {
				fresh = append(fresh, skippedKey{iteration: it, seed: sd})
			}
			clear(sd[:])
			ck = nx
		}
		seed, nextChain = chainStep(&ck)
		clear(ck[:])
	}
	mk := deriveMessageKey(&seed)
	clear(seed[:])
	pt, err := signalsuite.DecryptCBC(&mk.key, &mk.iv, w.Ciphertext)
	mk.clear()
	if err != nil {
		for i := range fresh {
			clear(fresh[i].seed[:])
		}
		clear(nextChain[:])
		return nil, ErrDecrypt
	}

	// Commit.
	if used >= 0 {
		clear(s.skipped[used].seed[:])
		s.skipped = slices.Delete(s.skipped, used, used+1)
		return pt, nil
	}
	all := append(s.skipped, fresh...)
	// The seeds are in all now: wipe the copies left behind, fresh's and,
	// if append moved them, the old array's.
	clear(fresh)
	if len(s.skipped) > 0 && &all[0] != &s.skipped[0] {
		clear(s.skipped)
	}
	if drop := len(all) - MaxSkippedKeys; drop > 0 {
		n := copy(all, all[drop:])
		clear(all[n:]) // the dropped keys' and the moved ones' old places
		all = all[:n]
	}
	s.skipped = all
	s.chainKey = nextChain
	clear(nextChain[:])
	s.iteration = w.Iteration + 1
	return pt, nil
}

func cmpUint32(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (s *state) clear() {
	clear(s.chainKey[:])
	for i := range s.skipped {
		clear(s.skipped[i].seed[:])
	}
	if s.signPriv != nil {
		s.signPriv.Clear()
	}
}

// Format redacts a chain under every verb, should one ever be printed.
func (s state) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "senderkey.state(chain %d iteration %d, REDACTED)", s.chainID, s.iteration)
}

// Clear wipes every key the record holds and empties it (best effort: Go
// may have copied them; see package keys).
func (r *Record) Clear() {
	for _, s := range r.states {
		s.clear()
	}
	r.states = nil
}

// String prints the number of chains and REDACTED.
func (r Record) String() string {
	return fmt.Sprintf("senderkey.Record(%d chains, REDACTED)", len(r.states))
}

// GoString is String.
func (r Record) GoString() string { return r.String() }

// Format prints String for every verb.
func (r Record) Format(f fmt.State, _ rune) { io.WriteString(f, r.String()) }

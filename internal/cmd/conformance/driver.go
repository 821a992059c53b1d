package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime/debug"

	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/ratchet"
	"github.com/ratchetkit/ratchetkit/session"
	"github.com/ratchetkit/ratchetkit/x3dh"
)

// answer is one answer line: the fields of a successful operation, or
// {"error": kind}.
type answer map[string]any

// conn is what the driver keeps under a session id: something that
// encrypts and decrypts. dh, when not nil, is the ratchet key pair that a
// DH ratchet step caused by this decryption must use instead of a fresh
// one; a decryption that commits no step ignores it.
type conn interface {
	encrypt(pt []byte) ([]byte, error)
	decrypt(msg []byte, dh *keys.PrivateKey) ([]byte, error)
	// clear wipes the secrets held, when the id is reused.
	clear()
}

// driver is the conformance driver's state for one run: the sessions by
// id. It is the whole protocol as a function from a request line to an
// answer line, so tests and the fuzz target run it in-process.
type driver struct {
	sessions map[string]conn
	// log receives a description of every internal error (a driver or
	// library bug), never key material.
	log io.Writer
}

func newDriver(log io.Writer) *driver {
	return &driver{sessions: make(map[string]conn), log: log}
}

// op answers one request whose shape it checks itself.
type op func(d *driver, r request) (answer, error)

// ops are the operations of PROTOCOL.md 9.2 by name.
var ops = map[string]op{
	"xeddsa_sign":        (*driver).xeddsaSign,
	"xeddsa_verify":      (*driver).xeddsaVerify,
	"x3dh_initiate":      (*driver).x3dhInitiate,
	"x3dh_respond":       (*driver).x3dhRespond,
	"ratchet_init_alice": (*driver).ratchetInitAlice,
	"ratchet_init_bob":   (*driver).ratchetInitBob,
	"encrypt":            (*driver).encrypt,
	"decrypt":            (*driver).decrypt,
	"session_initiate":   (*driver).sessionInitiate,
	"session_respond":    (*driver).sessionRespond,
}

// handleLine answers one input line (without its "\n"; a trailing "\r" is
// ignored) with one JSON object, without a newline.
func (d *driver) handleLine(line []byte) []byte {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	out, err := json.Marshal(d.handle(line))
	if err != nil {
		// Answers hold only strings and booleans.
		d.internal(fmt.Sprintf("encoding an answer: %v", err))
		return []byte(`{"error":"internal"}`)
	}
	return out
}

func (d *driver) handle(line []byte) (ans answer) {
	// A last line of defence: no input should get here, and the tests
	// treat an "internal" answer as a failure. Keeping the process alive
	// lets a harness report the request that caused it.
	defer func() {
		if p := recover(); p != nil {
			d.internal(fmt.Sprintf("panic: %v\n%s", p, debug.Stack()))
			ans = answer{"error": kindInternal}
		}
	}()
	r, err := parseObject(line)
	if err != nil {
		return answer{"error": kindMalformed}
	}
	name, err := r.str("op")
	if err != nil {
		return answer{"error": kindMalformed}
	}
	f, ok := ops[name]
	if !ok {
		return answer{"error": kindMalformed}
	}
	ans, err = f(d, r)
	if err != nil {
		k := kindOf(err)
		if k == kindInternal {
			d.internal(fmt.Sprintf("%s: %v", name, err))
		}
		return answer{"error": k}
	}
	return ans
}

func (d *driver) internal(msg string) {
	if d.log != nil {
		fmt.Fprintf(d.log, "conformance: internal error: %s\n", msg)
	}
}

// kindOf maps an error from the driver or the library to its kind. The
// library's errors say what failed in more words than the protocol has;
// this is the one place that decides which kind each of them is.
func kindOf(err error) kind {
	var k kind
	switch {
	case errors.As(err, &k):
		return k
	// Key errors first: x3dh wraps keys.ErrInvalidPublicKey inside its
	// ErrMalformed when a key in a bundle or header does not decode, and
	// the protocol calls that bad_key.
	case errors.Is(err, keys.ErrInvalidPublicKey),
		errors.Is(err, keys.ErrInvalidPrivateKey),
		errors.Is(err, keys.ErrSmallOrder):
		return kindBadKey
	case errors.Is(err, x3dh.ErrInvalidSignature):
		return kindInvalidSignature
	case errors.Is(err, x3dh.ErrMalformed),
		errors.Is(err, ratchet.ErrMalformed),
		errors.Is(err, session.ErrMalformed):
		return kindMalformed
	case errors.Is(err, session.ErrUnknownPreKey),
		// Respond was handed prekeys other than the ones the message
		// names: to a peer, the prekey it named is not there.
		errors.Is(err, x3dh.ErrPreKeyMismatch):
		return kindUnknownPrekey
	case errors.Is(err, session.ErrUntrustedIdentity):
		return kindUntrustedIdentity
	case errors.Is(err, ratchet.ErrUnknownType),
		errors.Is(err, session.ErrUnknownType):
		return kindUnknownType
	case errors.Is(err, ratchet.ErrAuthentication):
		return kindAuthFailed
	case errors.Is(err, ratchet.ErrDuplicate):
		return kindDuplicate
	case errors.Is(err, ratchet.ErrTooManySkipped):
		return kindTooManySkipped
	case errors.Is(err, ratchet.ErrCounterOverflow):
		return kindCounterOverflow
	case errors.Is(err, ratchet.ErrNoSendingChain),
		errors.Is(err, session.ErrNoSession):
		return kindNoSession
	}
	return kindInternal
}

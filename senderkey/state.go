package senderkey

import (
	"errors"

	"golang.org/x/crypto/cryptobyte"

	"github.com/ratchetkit/ratchetkit/keys"
)

// recordMagic starts a serialized Record, followed by a format version.
// The layout, in TLS presentation syntax (big-endian integers):
//
//	struct {
//	    uint32 iteration;
//	    opaque seed[32];
//	} SkippedKey;
//
//	struct {
//	    uint32 chain_id;
//	    uint32 iteration;          /* the chain key's next message */
//	    opaque chain_key[32];
//	    opaque signing_public[33]; /* 0x05 || u */
//	    opaque signing_private<0..32>;  /* empty, or 32 bytes: our own chain */
//	    uint16 skipped_count;      /* at most 2000 */
//	    SkippedKey skipped[skipped_count];  /* ascending, below iteration */
//	} State;
//
//	struct {
//	    opaque magic[4] = "RKSK";
//	    uint8 version = 1;
//	    uint8 state_count;         /* at most 5 */
//	    State states[state_count]; /* newest first, distinct chain ids */
//	} Record;
//
// Extending it: a new field means a new version; ParseRecord keeps reading
// every older version, and Bytes writes only the newest.
const (
	recordMagic   = "RKSK"
	recordVersion = 1
)

var errRecord = errors.New("bad record")

// Bytes serializes the record. The bytes contain secrets critical to
// forward secrecy: chain keys, the seeds of skipped messages and, for our
// own chain, the signing private key.
func (r *Record) Bytes() []byte {
	var b cryptobyte.Builder
	b.AddBytes([]byte(recordMagic))
	b.AddUint8(recordVersion)
	b.AddUint8(uint8(len(r.states)))
	for _, s := range r.states {
		b.AddUint32(s.chainID)
		b.AddUint32(s.iteration)
		b.AddBytes(s.chainKey[:])
		b.AddBytes(s.signPub.Encode())
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) {
			if s.signPriv != nil {
				b.AddBytes(s.signPriv.PrivateKey().Bytes())
			}
		})
		b.AddUint16(uint16(len(s.skipped)))
		for _, k := range s.skipped {
			b.AddUint32(k.iteration)
			b.AddBytes(k.seed[:])
		}
	}
	return b.BytesOrPanic()
}

// ParseRecord decodes a record made by Bytes, checking every bound Decrypt
// relies on. Errors say nothing about the bytes.
func ParseRecord(b []byte) (*Record, error) {
	r, ok := parseRecord(b)
	if !ok {
		return nil, malformed(errRecord)
	}
	return r, nil
}

func parseRecord(b []byte) (*Record, bool) {
	in := cryptobyte.String(b)
	var magic []byte
	var version, count uint8
	if !in.ReadBytes(&magic, 4) || string(magic) != recordMagic || !in.ReadUint8(&version) ||
		version != recordVersion || !in.ReadUint8(&count) || count > MaxStates {
		return nil, false
	}
	r := &Record{states: make([]*state, 0, count)}
	for range count {
		s := new(state)
		var ck, pub []byte
		var priv cryptobyte.String
		var nkeys uint16
		if !in.ReadUint32(&s.chainID) || !in.ReadUint32(&s.iteration) ||
			!in.ReadBytes(&ck, 32) || !in.ReadBytes(&pub, 33) ||
			!in.ReadUint8LengthPrefixed(&priv) || !in.ReadUint16(&nkeys) ||
			nkeys > MaxSkippedKeys || len(in) < int(nkeys)*36 {
			return nil, false
		}
		for _, x := range r.states {
			if x.chainID == s.chainID {
				return nil, false
			}
		}
		copy(s.chainKey[:], ck)
		var err error
		if s.signPub, err = keys.DecodePublicKey(pub); err != nil {
			return nil, false
		}
		switch len(priv) {
		case 0:
		case 32:
			if s.signPriv, err = keys.NewIdentityKeyPair(priv); err != nil || !s.signPriv.PublicKey().Equal(s.signPub) {
				return nil, false
			}
		default:
			return nil, false
		}
		s.skipped = make([]skippedKey, nkeys)
		for i := range s.skipped {
			var seed []byte
			in.ReadUint32(&s.skipped[i].iteration)
			in.ReadBytes(&seed, 32)
			copy(s.skipped[i].seed[:], seed)
			if s.skipped[i].iteration >= s.iteration || (i > 0 && s.skipped[i].iteration <= s.skipped[i-1].iteration) {
				return nil, false
			}
		}
		r.states = append(r.states, s)
	}
	if !in.Empty() {
		return nil, false
	}
	return r, true
}

package session

import (
	"fmt"
	"time"

	"github.com/ratchetkit/ratchetkit/internal/signalwire"
)

// MaxUnacknowledgedAge is how long a Signal session this device started
// may go unanswered: after it, Encrypt refuses the session with an error
// wrapping ErrNoSession, as libsignal does (MAX_UNACKNOWLEDGED_SESSION_AGE,
// 30 days; live, libsignal still encrypted after 29 days and refused
// after 31). The application fetches a fresh bundle and starts again. A
// session that has received a message is never stale.
const MaxUnacknowledgedAge = 30 * 24 * time.Hour

var errStale = fmt.Errorf("%w: the session was never answered and is older than MaxUnacknowledgedAge: start a new one", ErrNoSession)

// signal encrypts with a Signal session: a SignalMessage, wrapped in a
// PreKeySignalMessage while the session is an unanswered initiator.
func (e *encryption) signal(s *addrState, cur *entry) ([]byte, error) {
	h := &cur.sig
	if cur.role == roleInitiator && h.pending() {
		if e.m.now().Sub(time.Unix(h.created, 0)) > MaxUnacknowledgedAge {
			return nil, errStale
		}
		inner, err := cur.sess.AppendEncrypt(nil, e.plaintext)
		if err != nil {
			return nil, err
		}
		pk := signalwire.PreKeySignalMessage{
			HasPreKeyID:     h.flags&sigFlagOPK != 0,
			PreKeyID:        h.opkID,
			BaseKey:         decodeKey(h.baseKey[:]),
			IdentityKey:     decodeKey(h.local[:]),
			Message:         inner,
			RegistrationID:  e.m.regID,
			SignedPreKeyID:  h.spkID,
			KyberPreKeyID:   h.kyberID,
			KyberCiphertext: h.ct,
		}
		out, err := pk.Append(e.dst)
		if err != nil {
			return nil, err
		}
		if err := s.commit(e.m.st); err != nil {
			return nil, err
		}
		return out, nil
	}
	out, err := cur.sess.AppendEncrypt(e.dst, e.plaintext)
	if err != nil {
		return nil, err
	}
	if err := s.commit(e.m.st); err != nil {
		return nil, err
	}
	return out, nil
}

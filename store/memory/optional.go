package memory

import (
	"bytes"
	"context"
	"slices"

	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/store"
)

var _ store.SessionSwapper = (*Store)(nil)

// SwapSession implements [store.SessionSwapper]. It holds the writer
// semaphore, so that no Update runs meanwhile, and the data lock, so that
// no View reads half a record; it compares the stored bytes in place and
// writes the new record into the stored buffer when it fits (wiping what
// is left of the old one), so that a steady-state message makes no
// allocation and no copy beyond the one record.
func (s *Store) SwapSession(ctx context.Context, addr store.Address, old, record []byte, trusted *keys.PublicKey) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if trusted == nil {
		return false, errNilKey
	}
	// The uncontended case first: a select with one case and a default
	// is cheaper than one that also waits for ctx.
	select {
	case s.writer <- struct{}{}:
	default:
		select {
		case s.writer <- struct{}{}:
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	defer func() { <-s.writer }()
	s.mu.Lock()
	defer s.mu.Unlock()
	devices := s.d.sessions[addr.Name]
	cur, ok := devices[addr.DeviceID]
	if !ok || !bytes.Equal(cur, old) {
		return false, nil
	}
	id := s.d.identities[addr]
	var enc [keys.EncodedPublicKeySize]byte
	if id == nil || string(trusted.AppendEncode(enc[:0])[1:]) != string(id[:]) {
		return false, nil
	}
	if cap(cur) >= len(record) {
		n := copy(cur[:len(record)], record)
		clear(cur[n:cap(cur)])
		devices[addr.DeviceID] = cur[:n]
	} else {
		clear(cur)
		devices[addr.DeviceID] = bytes.Clone(record)
	}
	return true, nil
}

var (
	_ store.SessionsClearer = (*sessionsTx)(nil)
	_ store.PreKeyLister    = (*preKeysTx)(nil)
)

// DeleteAll implements [store.SessionsClearer]: it records the deletion
// of every record the transaction sees.
func (t *sessionsTx) DeleteAll(ctx context.Context) error {
	if err := (*tx)(t).check(ctx, true); err != nil {
		return err
	}
	for name, devices := range t.s.d.sessions {
		for dev := range devices {
			a := store.Address{Name: name, DeviceID: dev}
			if e, pending := t.sessions[a]; pending {
				clear(e.v)
			}
			set(&t.sessions, a, entry[[]byte]{})
		}
	}
	for a, e := range t.sessions {
		if e.ok {
			clear(e.v)
			t.sessions[a] = entry[[]byte]{}
		}
	}
	return nil
}

// IDs implements [store.PreKeyLister].
func (t *preKeysTx) IDs(ctx context.Context) ([]uint32, error) {
	if err := (*tx)(t).check(ctx, false); err != nil {
		return nil, err
	}
	out := []uint32{}
	for id := range t.s.d.prekeys {
		if e, pending := t.prekeys[id]; !pending || e.ok {
			out = append(out, id)
		}
	}
	for id, e := range t.prekeys {
		if _, committed := t.s.d.prekeys[id]; e.ok && !committed {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out, nil
}

package session

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/ratchetkit/ratchetkit/pqxdh"
	"github.com/ratchetkit/ratchetkit/ratchet"
	"github.com/ratchetkit/ratchetkit/store"
	"github.com/ratchetkit/ratchetkit/x3dh"
)

// Fan-out: one plaintext for every device of some users, which is how a
// messenger whose users have several devices sends a message (to the
// recipient's devices and to the sender's own other devices, so that they
// show what was sent) and how it hands a group's sender-key distribution
// message to every member (package senderkey). The server knows which
// devices a user has; the application passes its lists in, and
// EncryptToDevices reports, device by device, what it sent and what it
// could not.

// Bundle is a prekey bundle of either protocol, for EncryptToDevices to
// start a session with a device it has none with: X3DH for a profile v1
// Manager, PQXDH for a Signal one (Config.Protocol). The other field is
// nil.
type Bundle struct {
	X3DH  *x3dh.Bundle
	PQXDH *pqxdh.Bundle
}

// BundleFetcher fetches the prekey bundle of addr from the server, for
// EncryptToDevices to start a session with a device it has none with.
// An error (the server has no bundle for the device, the network failed)
// fails that device alone.
type BundleFetcher func(ctx context.Context, addr store.Address) (Bundle, error)

// DeviceList is the server's list of a user's devices: the devices a
// message to Name goes to.
type DeviceList struct {
	Name    string
	Devices []uint32
}

// FanoutReport is what EncryptToDevices did, device by device. Each
// device the call was given, but the sending device itself, is in Sent or
// in Failed, once; Stale lists the devices of the lists' names that it
// was not given but has sessions with. Addresses are in
// the order of the lists given, device ids in increasing order.
type FanoutReport struct {
	Sent   []FanoutMessage
	Failed []FanoutFailure
	// Stale lists the devices this Manager has a session with that the
	// server's list no longer has (removed, or re-registered under
	// another id). Nothing was encrypted for them and their sessions are
	// kept as they are: the list is the server's word, which the
	// application may trust or not. To drop one, call DeleteSession.
	Stale []store.Address
}

// FanoutMessage is the message EncryptToDevices made for one device.
type FanoutMessage struct {
	Address store.Address
	Message []byte
	// Type is the message's type: under ratchet.Signal, SignalTypePreKey
	// or SignalTypeWhisper (libsignal's CiphertextMessageType, which a
	// transport shared with libsignal carries beside the bytes); under
	// profile v1, its type byte, 0x02 for a prekey message and 0x01 for
	// a ratchet message.
	Type int
	// Started reports that the session was started for this message, from
	// a bundle the BundleFetcher fetched: the device was new, or its
	// session had expired (see MaxUnacknowledgedAge).
	Started bool
}

// FanoutFailure is a device that EncryptToDevices sent nothing to, and
// why. Err matches with errors.Is: ErrBundleFetch (no session and no
// bundle: the fetcher's error is wrapped too), ErrUntrustedIdentity (an
// *IdentityError, from the session or from the fetched bundle: approve
// the key and send again), x3dh or pqxdh errors for a bundle that does
// not verify, ErrConflict, and context or store errors.
type FanoutFailure struct {
	Address store.Address
	Err     error
}

// ErrBundleFetch reports a device that EncryptToDevices has no session
// with and could not fetch a bundle for: the BundleFetcher failed (its
// error is wrapped as well), or returned no bundle of the Manager's
// protocol.
var ErrBundleFetch = errors.New("session: no session with the device, and fetching its bundle failed")

var errBundleProtocol = fmt.Errorf("%w: the fetcher returned no bundle of the Manager's protocol", ErrBundleFetch)

// EncryptToDevices encrypts plaintext for every device in to, except
// self, the sending device's own address (its name and the device id the
// Manager was initialized with). So a message to a user goes, in one
// call, to the server's list of the recipient's devices and to the
// server's list of the sender's own, which keeps the sender's other
// devices in step. self is not checked against the store (that would
// cost an identity key derivation per call); a zero self leaves nothing
// out.
//
// For each device it encrypts with the current session, as Encrypt does.
// A device it has no session with (a new device), or whose Signal session
// went unanswered for MaxUnacknowledgedAge, gets a new session from a
// bundle fetch returns (StartSession or StartSignalSession, with their
// identity checks) and a prekey message. A device's failure is reported
// in the FanoutReport and never stops the others; a device that failed
// is left as it was, except that a session started from a fetched bundle
// is kept if encrypting with it then failed (a conflict or a store
// error), and is used by the next call. fetch is called only for devices
// that need a bundle, one at a time, and may be nil if none should be
// fetched (such devices fail with ErrBundleFetch).
//
// A device listed twice is encrypted for once. Devices this Manager has
// sessions with that a list does not name are reported in
// FanoutReport.Stale and left alone.
//
// The devices are encrypted for one after the other, each under its
// address's lock as Encrypt is: calls for other addresses, and other
// fan-outs, interleave with it, and a concurrent fan-out to the same
// devices sends its messages before or after this one's, device by
// device. Each message is saved before EncryptToDevices returns it. The
// messages share one allocation; each has its length as capacity, so
// that appending to one copies it rather than overwriting the next.
//
// The error is for what stops the whole call before any device:
// ErrTooLarge, a store error listing the stored devices, or ctx done. A
// context that ends during the call fails the remaining devices with its
// error.
func (m *Manager) EncryptToDevices(ctx context.Context, self store.Address, to []DeviceList, plaintext []byte, fetch BundleFetcher) (*FanoutReport, error) {
	if len(plaintext) > m.maxMessage {
		return nil, errTooLargeOut
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	stored, err := m.storedDevices(ctx, to)
	if err != nil {
		return nil, err
	}
	rep := new(FanoutReport)
	seen := map[store.Address]bool{}
	if self != (store.Address{}) {
		seen[self] = true
	}
	lists := make([][]uint32, len(to))
	for i, l := range to {
		devs := slices.Clone(l.Devices)
		slices.Sort(devs)
		lists[i] = slices.Compact(devs)
	}
	// One buffer for the messages: a steady message is the plaintext and
	// less than fanoutOverhead bytes; a longer one (a prekey message)
	// gets an allocation of its own. Its room is one message per device
	// both listed and with a stored session (in the first list of each
	// name), not per device listed: the lists are the server's word, and
	// many repeated or unknown ids (or sessions kept from a long list of
	// old) must not buy an allocation of their number times the
	// plaintext.
	n := 0
	names := make(map[string]bool, len(to))
	for i, l := range to {
		if names[l.Name] {
			continue
		}
		names[l.Name] = true
		for _, id := range stored[i] {
			if _, listed := slices.BinarySearch(lists[i], id); listed {
				n++
			}
		}
	}
	buf := make([]byte, 0, n*(len(plaintext)+fanoutOverhead))
	for i, l := range to {
		devs := lists[i]
		for _, id := range devs {
			addr := store.Address{Name: l.Name, DeviceID: id}
			if seen[addr] {
				continue
			}
			seen[addr] = true
			dst := buf[len(buf):]
			msg, started, err := m.encryptToDevice(ctx, dst, addr, plaintext, fetch)
			if err != nil {
				rep.Failed = append(rep.Failed, FanoutFailure{Address: addr, Err: err})
				continue
			}
			if cap(msg) == cap(dst) { // in buf
				buf = buf[:len(buf)+len(msg)]
			}
			msg = msg[:len(msg):len(msg)]
			rep.Sent = append(rep.Sent, FanoutMessage{Address: addr, Message: msg, Type: m.messageType(msg), Started: started})
		}
	}
	// Stale only once every list is done: a name may come in several
	// lists, and a device a later one lists is not stale.
	for i, l := range to {
		for _, id := range stored[i] {
			addr := store.Address{Name: l.Name, DeviceID: id}
			if seen[addr] {
				continue
			}
			seen[addr] = true
			rep.Stale = append(rep.Stale, addr)
		}
	}
	return rep, nil
}

// fanoutOverhead bounds what a steady message adds to its plaintext: 57
// bytes under profile v1 (header and tag); under Signal the version byte,
// the protobuf fields, up to 16 bytes of CBC padding, the MAC and SPQR's
// payload, which stays below 200 bytes in the steady state.
const fanoutOverhead = 256

// storedDevices reads, in one read-only transaction, the devices of each
// list's name that have sessions.
func (m *Manager) storedDevices(ctx context.Context, to []DeviceList) ([][]uint32, error) {
	stored := make([][]uint32, len(to))
	err := m.st.View(ctx, func(tx store.Tx) error {
		for i, l := range to {
			var err error
			if stored[i], err = tx.Sessions().Devices(ctx, l.Name); err != nil {
				return storeError("listing devices", err)
			}
		}
		return nil
	})
	return stored, err
}

// encryptToDevice is one device of a fan-out: Encrypt, and if there is no
// session to encrypt with, a session started from a fetched bundle and
// Encrypt again. started reports a new session.
func (m *Manager) encryptToDevice(ctx context.Context, dst []byte, addr store.Address, plaintext []byte, fetch BundleFetcher) (msg []byte, started bool, err error) {
	msg, err = m.AppendEncrypt(ctx, dst, addr, plaintext)
	if !errors.Is(err, ErrNoSession) {
		return msg, false, err
	}
	if fetch == nil {
		return nil, false, fmt.Errorf("%w: no BundleFetcher", ErrBundleFetch)
	}
	b, err := fetch(ctx, addr)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %w", ErrBundleFetch, err)
	}
	switch {
	case m.proto == ratchet.Signal && b.PQXDH != nil:
		err = m.StartSignalSession(ctx, addr, b.PQXDH)
	case m.proto == ratchet.ProfileV1 && b.X3DH != nil:
		err = m.StartSession(ctx, addr, b.X3DH)
	default:
		return nil, false, errBundleProtocol
	}
	if err != nil {
		return nil, false, err
	}
	msg, err = m.AppendEncrypt(ctx, dst, addr, plaintext)
	if err != nil {
		return nil, false, err
	}
	return msg, true, nil
}

// messageType is FanoutMessage.Type of a message this Manager made.
func (m *Manager) messageType(msg []byte) int {
	if m.proto == ratchet.Signal {
		return SignalMessageType(msg)
	}
	return int(msg[0])
}

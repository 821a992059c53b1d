// Package api is the wire protocol between the chat server and its clients:
// the JSON bodies of the HTTP key-distribution API and the JSON frames of the
// WebSocket relay. Both sides import it, so the protocol is written down once.
//
// # HTTP
//
// Every request and response body is a JSON object; byte strings (keys,
// signatures, envelopes) are standard base64, as encoding/json writes []byte.
// Public keys are in the profile's 33-byte form 0x05 || u. Requests marked
// "auth" carry the token that registration returned, as
// "Authorization: Bearer <token>".
//
//	POST /v1/register              RegisterRequest → 201 RegisterResponse
//	PUT  /v1/keys          (auth)  KeysRequest → PreKeyCount       replace identity, reset
//	PUT  /v1/keys/signed   (auth)  SignedPreKey → PreKeyCount      rotate the signed prekey
//	POST /v1/keys/one-time (auth)  PreKeysRequest → PreKeyCount    add one-time prekeys
//	GET  /v1/keys/count    (auth)  → PreKeyCount
//	GET  /v1/users/{name}/bundle (auth) → Bundle                   device 1's; takes one one-time prekey
//	GET  /v1/users/{name}/devices (auth) → Devices                 the user's device ids
//	GET  /v1/users/{name}/devices/{id}/bundle (auth) → Bundle      one device's; takes one one-time prekey
//	POST /v1/devices/link  (auth)  LinkRequest → 201 LinkResponse  a code that admits one more device
//	POST /v1/devices/provision     ProvisionRequest → Provision    what the new device fetches with it
//	POST /v1/devices               DeviceRequest → 201 RegisterResponse  a device joins with a link code
//	GET  /v1/ws            (auth)  WebSocket upgrade, then Frames
//	GET  /healthz                  → 200 Health, or 503 Health      for load balancers
//
// A failed request answers with an HTTP error status and an ErrorResponse
// whose Code is one of the Code constants. The server reads a request body,
// and a frame, as exactly one JSON object with no unknown field and no
// field twice (names that differ only in case count as the same), and
// refuses paths with empty, "." or ".." segments.
//
// # WebSocket
//
// Each WebSocket message is one JSON Frame. The client sends FrameSend (an
// opaque envelope for one device of a named user: To and Device, device 1
// if Device is 0) and FrameAck (a delivered message has
// been processed). The server answers a send with FrameSent once the envelope
// is stored, pushes FrameMessage for every queued envelope, FramePreKeys with
// the client's remaining one-time prekeys, and FrameError for a bad frame or
// a refused send (the recipient's queue or the sender's share of it full,
// the server's queue budget spent, or the sender over its send rate).
// A FrameMessage names the sending device (From and FromDevice).
//
// # Devices
//
// An account has up to MaxDevices devices, numbered from 1 (the one that
// registered the account). Each device has its own token, prekeys and
// queue, and the account's identity key: an envelope is addressed to one device, and a client
// sends a message to every device of its recipient, and a copy to its own
// other devices. A new device joins with a link code that an existing
// device of the account registered (POST /v1/devices/link): one use,
// valid for LinkTTL seconds. The code the server sees is a hash of the
// secret the user carries to the new device, so the server cannot open the
// provisioning message stored with it, which gives the new device the
// account's identity key; packages server and client say what that
// protects. The server
// knows nothing of groups: a group message is an envelope like any other,
// sent to each member device.
// Envelopes stay queued until acknowledged, so a message may be delivered
// more than once (after a reconnect); the ratchet recognises the repeat.
package api

import (
	"fmt"

	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/x3dh"
)

// Limits shared by the server, which enforces them, and the client, which
// stays within them.
const (
	// MaxNameLen is the longest user name.
	MaxNameLen = 32
	// MaxBodySize bounds an HTTP request body.
	MaxBodySize = 64 << 10
	// MaxEnvelopeSize bounds one envelope, the encrypted message a client
	// relays: a plaintext of up to a few tens of kilobytes fits.
	MaxEnvelopeSize = 48 << 10
	// MaxFrameSize bounds one WebSocket message: an envelope in base64
	// (4/3 of its size) and the JSON around it.
	MaxFrameSize = 72 << 10
	// MaxPreKeysPerRequest bounds the one-time prekeys of one request.
	MaxPreKeysPerRequest = 100
	// MaxPreKeys bounds the one-time prekeys stored per user.
	MaxPreKeys = 500
	// MaxIDLen bounds a client's message id in a send frame.
	MaxIDLen = 64
	// MaxDevices bounds the devices of one account: the one that
	// registered it and up to five linked ones, as Signal allows.
	MaxDevices = 6
	// LinkTTL is how long a link code admits a new device, in seconds.
	LinkTTL = 600
	// LinkCodeLen is the length of a link code: 64 hexadecimal digits.
	LinkCodeLen = 64
	// MaxProvisionSize bounds a provisioning message.
	MaxProvisionSize = 1024
)

// Error codes of ErrorResponse and FrameError.
const (
	CodeBadRequest     = "bad_request"      // malformed JSON, missing or unknown field, bad name
	CodeTooLarge       = "too_large"        // body, frame or envelope over its limit
	CodeUnauthorized   = "unauthorized"     // missing or unknown token
	CodeUnknownUser    = "unknown_user"     // no such user
	CodeUnknownDevice  = "unknown_device"   // no such device of the user
	CodeLink           = "link"             // a device registration without a valid, unused link code
	CodeTooManyDevices = "too_many_devices" // the account has MaxDevices devices
	CodeNameTaken      = "name_taken"       // registration of a name in use
	CodeInvite         = "invite"           // registration without a valid, unused invite code
	CodeKeyTaken       = "key_taken"        // an identity key registered to another name
	CodeBadKey         = "bad_key"          // a key that does not decode or has small order
	CodeBadSignature   = "bad_signature"    // the signed prekey's signature does not verify
	CodePreKeyExists   = "prekey_exists"    // a one-time prekey id in use or repeated
	CodeTooMany        = "too_many"         // prekeys over MaxPreKeys
	CodeQueueFull      = "queue_full"       // the recipient's queue is at its envelope or byte limit
	CodeShareFull      = "share_full"       // the sender's share of the recipient's queue is used up
	CodeServerFull     = "server_full"      // the queues of all users are at the server's byte limit
	CodeRateLimited    = "rate_limited"     // too many requests or sends; see Retry-After or the message
	CodeNotFound       = "not_found"        // no such endpoint
	CodeInternal       = "internal"         // the server failed; nothing was changed
)

// ErrorResponse is the body of every failed HTTP request.
type ErrorResponse struct {
	Error Error `json:"error"`
}

// Error describes a failure. Message is for people; Code is for programs.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return "chat server: " + e.Code + ": " + e.Message }

// SignedPreKey is a signed prekey's public half and its signature by the
// identity key.
type SignedPreKey struct {
	ID        uint32 `json:"id"`
	Key       []byte `json:"key"`
	Signature []byte `json:"signature"`
}

// PreKey is a one-time prekey's public half.
type PreKey struct {
	ID  uint32 `json:"id"`
	Key []byte `json:"key"`
}

// RegisterRequest claims a name and publishes its owner's keys.
type RegisterRequest struct {
	Name string `json:"name"`
	// Invite is an invite code, needed if the server was started with
	// some.
	Invite         string       `json:"invite,omitempty"`
	IdentityKey    []byte       `json:"identity_key"`
	SignedPreKey   SignedPreKey `json:"signed_prekey"`
	OneTimePreKeys []PreKey     `json:"one_time_prekeys"`
}

// RegisterResponse returns the token that authenticates the new device
// from then on. The server keeps only its hash; a lost token loses the
// device (and, for the only device of an account, the name). Device is
// the device's id: 1 for a new account.
type RegisterResponse struct {
	Token          string `json:"token"`
	OneTimePreKeys int    `json:"one_time_prekeys"`
	Device         uint32 `json:"device,omitempty"`
}

// LinkRequest registers a link code: with it, one new device can join the
// account once within LinkTTL seconds and fetch Provision, a message of
// at most MaxProvisionSize bytes for it (the server cannot read it).
// Registering a new code voids the previous one. Code is what the new
// device will present, LinkCodeLen characters: package client makes it
// a hash of the secret the user types, so that the secret never reaches
// the server.
type LinkRequest struct {
	Code      string `json:"code"`
	Provision []byte `json:"provision"`
}

// LinkResponse says until when the link code is good.
type LinkResponse struct {
	Expires int64 `json:"expires"` // Unix time
}

// ProvisionRequest fetches the provisioning message of Name's live link
// code LinkCode, without using the code up.
type ProvisionRequest struct {
	Name     string `json:"name"`
	LinkCode string `json:"link_code"`
}

// Provision is a link code's provisioning message.
type Provision struct {
	Provision []byte `json:"provision"`
}

// DeviceRequest adds a device to Name's account with a link code and
// publishes the new device's keys.
type DeviceRequest struct {
	Name           string       `json:"name"`
	LinkCode       string       `json:"link_code"`
	IdentityKey    []byte       `json:"identity_key"`
	SignedPreKey   SignedPreKey `json:"signed_prekey"`
	OneTimePreKeys []PreKey     `json:"one_time_prekeys"`
}

// Devices lists the device ids of Name, in increasing order.
type Devices struct {
	Name    string   `json:"name"`
	Devices []uint32 `json:"devices"`
}

// KeysRequest replaces all of a user's keys: a reset identity.
type KeysRequest struct {
	IdentityKey    []byte       `json:"identity_key"`
	SignedPreKey   SignedPreKey `json:"signed_prekey"`
	OneTimePreKeys []PreKey     `json:"one_time_prekeys"`
}

// PreKeysRequest adds one-time prekeys.
type PreKeysRequest struct {
	OneTimePreKeys []PreKey `json:"one_time_prekeys"`
}

// Health is the answer of /healthz: "ok" with status 200, or with 503
// "draining" (the instance is shutting down) or "database unavailable".
type Health struct {
	Status string `json:"status"`
}

// PreKeyCount says how many one-time prekeys the server holds for the
// caller.
type PreKeyCount struct {
	OneTimePreKeys int `json:"one_time_prekeys"`
}

// Bundle is what a client fetches to start a session with Name. OneTimePreKey
// is nil when the server had none left (Exhausted) or had handed out as many
// of Name's as its limit per owner allows for now (Withheld): the session
// then starts from the signed prekey alone, whose forward secrecy lasts only
// until it is rotated.
type Bundle struct {
	Name          string       `json:"name"`
	Device        uint32       `json:"device"`
	IdentityKey   []byte       `json:"identity_key"`
	SignedPreKey  SignedPreKey `json:"signed_prekey"`
	OneTimePreKey *PreKey      `json:"one_time_prekey,omitempty"`
	Exhausted     bool         `json:"one_time_prekeys_exhausted"`
	Withheld      bool         `json:"one_time_prekey_withheld,omitempty"`
}

// X3DH converts b to the library's bundle. It decodes the keys but leaves
// the signature and small-order checks to x3dh.Bundle.Verify (or
// x3dh.Initiate, which runs them).
func (b *Bundle) X3DH() (*x3dh.Bundle, error) {
	ik, err := keys.DecodePublicKey(b.IdentityKey)
	if err != nil {
		return nil, fmt.Errorf("identity key: %w", err)
	}
	spk, err := keys.DecodePublicKey(b.SignedPreKey.Key)
	if err != nil {
		return nil, fmt.Errorf("signed prekey: %w", err)
	}
	xb := &x3dh.Bundle{
		IdentityKey:           ik,
		SignedPreKeyID:        b.SignedPreKey.ID,
		SignedPreKey:          spk,
		SignedPreKeySignature: b.SignedPreKey.Signature,
	}
	if b.OneTimePreKey != nil {
		if xb.OneTimePreKey, err = keys.DecodePublicKey(b.OneTimePreKey.Key); err != nil {
			return nil, fmt.Errorf("one-time prekey: %w", err)
		}
		xb.OneTimePreKeyID = b.OneTimePreKey.ID
	}
	return xb, nil
}

// NewSignedPreKey describes spk's public half for the server.
func NewSignedPreKey(spk *keys.SignedPreKey) SignedPreKey {
	return SignedPreKey{ID: spk.ID(), Key: spk.PublicKey().Encode(), Signature: spk.Signature()}
}

// NewPreKeys describes the public halves of pks for the server.
func NewPreKeys(pks []*keys.OneTimePreKey) []PreKey {
	out := make([]PreKey, len(pks))
	for i, pk := range pks {
		out[i] = PreKey{ID: pk.ID(), Key: pk.PublicKey().Encode()}
	}
	return out
}

// ValidName reports whether name can be registered: 1 to MaxNameLen
// characters from a-z, 0-9, '-' and '_'. The narrow alphabet keeps names
// safe to print in a terminal and in logs, and rules out look-alikes.
func ValidName(name string) bool {
	if len(name) == 0 || len(name) > MaxNameLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Frame types.
const (
	FrameSend    = "send"    // client → server: To, Device, Body, optional ID
	FrameAck     = "ack"     // client → server: Seq of a processed message
	FrameSent    = "sent"    // server → client: ID and Seq of a stored envelope
	FrameMessage = "message" // server → client: Seq, From, FromDevice, Body
	FramePreKeys = "prekeys" // server → client: Remaining one-time prekeys
	FrameError   = "error"   // server → client: Code, Message, and ID if the frame had one
)

// Frame is one WebSocket message in either direction; Type says which
// fields are used.
type Frame struct {
	Type       string `json:"type"`
	ID         string `json:"id,omitempty"`
	To         string `json:"to,omitempty"`
	Device     uint32 `json:"device,omitempty"`
	From       string `json:"from,omitempty"`
	FromDevice uint32 `json:"from_device,omitempty"`
	Seq        int64  `json:"seq,omitempty"`
	Body       []byte `json:"body,omitempty"`
	Remaining  *int   `json:"remaining,omitempty"`
	Code       string `json:"code,omitempty"`
	Message    string `json:"message,omitempty"`
}

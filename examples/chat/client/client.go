// Package client is the chat example's client library: the terminal client
// (command chat) and the end-to-end test both drive it.
//
// A Client owns one account on a chat server (package server) and keeps
// everything in two SQLite files in its directory (see Open): its keys and
// sessions in a ratchetkit store, and its account, outbox and held messages
// in a small database of its own. It talks to the server's HTTP API to
// register, publish prekeys and fetch peers' bundles, and to the WebSocket
// relay to send and receive envelopes. Every envelope is a ratchetkit
// message made by package session; the server sees only ciphertext.
//
// # Delivery
//
// Sending encrypts the message (which saves the advanced session), puts the
// envelope in the outbox, and sends the outbox in order whenever the relay
// is connected; an envelope leaves the outbox once the server has stored
// it. Receiving decrypts each envelope (saving the session), reports it, and
// then acknowledges it, which lets the server delete it. So a crash or a
// lost connection can make an envelope travel twice, but never lose it: a
// repeat is recognised by its server sequence number, or by the ratchet as
// a duplicate, and dropped. Messages from one sender are reported in the
// order they were sent.
//
// A lost connection is redialled with backoff (100 ms, doubling up to 5
// s); a server that closes it as going away (a graceful shutdown) is
// redialled at once, so that a load balancer can move the client to
// another instance without a pause.
//
// The windows that remain: a crash between encrypting and writing the
// outbox loses that message (the peer's ratchet skips over it), and one
// between decrypting and reporting loses it from the user's view.
//
// # Devices
//
// An account may have several devices (up to api.MaxDevices), each with
// its own directory, prekeys and sessions, and the account's identity key
// (see below): a message to a
// user is encrypted for every one of the user's devices, and a copy for
// each of the sender's own other devices, so that all of them show the
// conversation. The server gives the device lists; the client keeps each
// for Config.DeviceListTTL and adds a device it hears from. A device that
// joins later gets what is sent from then on, never what was sent before:
// no one encrypted that for it.
//
// A new device joins an account with a link code that one of the
// account's devices makes (LinkCode, then Config.Link on the new device):
// approval by a device the user already holds, one use, ten minutes. The
// code carries the account's identity key to the new device, inside a
// provisioning message the server relays and cannot open, so all devices
// of a user share one identity key and one safety number. The device list
// is the server's word; what keeps it honest is that every device of a
// user must have the user's key: a fan-out refuses a bundle with another
// key (EventDeviceRejected), and a device this client has no key for is
// pinned to its account's key before its first message, so that one with
// another key is held as an identity change. The first device of a user
// is trusted on first use, as a peer always was. ResetIdentity replaces
// the key of this device alone: the account's other devices are then
// refused by contacts until they are linked again.
//
// # Groups
//
// A group message is encrypted once, with Sender Keys (package
// senderkey), and the one ciphertext goes to every member device as an
// envelope, the sender's own other devices included. What the members
// need to read it travels over the pairwise sessions, as contents (see
// content.go): the group's state (its id, name, version and member
// names) and each sending device's distribution message, the chain key
// and signing key of its sender chain for the group.
//
// The server stores nothing about groups. The sender gives the recipient
// devices envelope by envelope, so the server learns who receives what
// from whom, as for pairwise messages, but holds no membership: the
// member list is the clients' own, and each group envelope counts against
// the sender's send rate and the recipients' queue limits like any
// other, which is what bounds what a large group costs the server. The
// client bounds groups to MaxGroupMembers members and keeps at most
// MaxGroups groups.
//
// Distribution is lazy: before each group message, the sender sends its
// distribution message, pairwise, to every member device that does not
// have its current chain yet (table sk_shared), then the message to all.
// A member added later, or a device a member adds later, thus gets each
// sender's chain at the sender's next message, at that message's
// iteration: it can read from then on, never what was sent before.
//
// Who may change a group: any member. A state is accepted from a device
// of a member of the state the client has (or, for a group it does not
// know, of a member of the new state), and only if its version is higher;
// two members changing a group at once may leave members with different
// lists until the next change. A state without the client's user in it
// means the user was removed.
//
// Removing a member rotates the sender keys: the member who removes, and
// every other member when the new state reaches it, drops its own sender
// chain for the group and forgets who had it, so that its next message
// starts a new chain, distributed to the remaining member devices only.
// The removed member keeps the old chains and can still read what was
// sent on them, but nothing sent after the senders learned of the
// removal. What Sender Keys do not give: post-compromise security within
// a chain (whoever learns a chain key reads the rest of that chain until
// its sender rotates), and a member's device cannot be removed alone,
// only the member.
//
// # Identity keys
//
// The client trusts a peer's identity key on first use and records it. A
// different key later (the peer reset its identity, or someone is
// impersonating it) stops the conversation: incoming envelopes are held
// back, sending fails with an *IdentityChangedError, and an
// EventIdentityChanged reports the new safety number. Only ApproveIdentity,
// which the user should call after comparing safety numbers out of band,
// lets it continue; the held envelopes are then decrypted in order.
//
// # Limits
//
// A contact can be hostile, and every limit below is per sender, so that
// one sender's abuse costs the others nothing:
//
//   - An envelope over Config.MaxEnvelopeSize (default the relay's own
//     api.MaxEnvelopeSize) is dropped before anything else is done with
//     it: an EventDropped with ErrEnvelopeTooLarge, and it is
//     acknowledged. The session layer has its own, inner, limit.
//   - Held envelopes are bounded by Config.MaxHeld and MaxHeldBytes
//     (default 100 envelopes and 1 MiB per sender). A running count and
//     byte total per sender decide, in one indexed lookup, whether the
//     next one fits; the held bodies are read only on approval. The first
//     envelope over either bound, and every later one of that sender, is
//     neither stored nor acknowledged (EventHeldFull says so once): it
//     stays in the server's queue, where the server's own limits on what
//     one sender may queue apply, so that holding cannot make room there
//     for more. None of them is lost: after ApproveIdentity the client
//     reconnects, the server sends them again in order, and they are
//     decrypted then. Until the user approves, each new connection brings
//     them again, at the cost of an indexed lookup each.
//   - Trial decryption is rationed. A forged ratchet message is tried on
//     every session kept for its sender (up to 41), each perhaps doing a
//     DH ratchet step and MaxSkip chain steps before its tag fails: tens of
//     milliseconds, against a fraction of one for a real message. Each
//     envelope that fails to decrypt spends one of the sender's
//     Config.FailedDecryptBurst allowances (default 10), which come back
//     at FailedDecryptRate per second (default 0.2). A sender with none
//     left has its envelopes dropped unread, an EventDropped with
//     ErrThrottled, and acknowledged. A peer whose messages decrypt is
//     never throttled; one that is throttled has its real messages
//     dropped too until its allowance grows back, which is the price of
//     not decrypting them. Sustained, a hostile contact buys at most
//     FailedDecryptRate trial decryptions a second. Group messages that
//     fail, and malformed contents or group states, spend the same
//     allowance.
//   - Groups. A contact can put the user in groups: at most MaxGroups are
//     kept (more are refused with an EventError), each of at most
//     MaxGroupMembers valid names, and a change is taken only from a
//     member. A group message costs one signature check and one chain
//     walk of at most senderkey.MaxForwardJump steps, which the failure
//     allowance rations like trial decryptions.
package client

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/ratchetkit/ratchetkit/examples/chat/api"
	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/ratchet"
	"github.com/ratchetkit/ratchetkit/session"
	"github.com/ratchetkit/ratchetkit/store"
	"github.com/ratchetkit/ratchetkit/store/sqlstore"
)

// deviceID is the first device of an account, the one that registered
// it; a linked device gets the next free id from the server.
const deviceID = 1

// MaxMessageSize is the longest message Send accepts: its envelope (the
// text, a 42-byte ratchet header, a 16-byte tag and, until the peer
// answers, a 76-byte X3DH header) must fit the relay's limit.
const MaxMessageSize = api.MaxEnvelopeSize - 256

// Config configures Open.
type Config struct {
	// Dir holds the client's state; it is created if missing.
	Dir string
	// Server is the server's base URL ("https://chat.example:8443"). It is
	// needed to register; afterwards the URL saved at registration is
	// used and Server, if set, must match it.
	Server string
	// Name is the user name to register. Afterwards it must match the
	// registered name if set.
	Name string
	// Invite is the invite code sent with the registration, for a server
	// started with invite codes; it is used once and not stored.
	Invite string
	// Link is a link code from another device of the account Name (see
	// Client.LinkCode): with it, a directory without an account joins
	// that account as a new device instead of registering the name. It
	// is used once and not stored.
	Link string
	// DeviceListTTL is how long the client trusts a user's device list
	// before it asks the server again (default 30 seconds; negative:
	// always ask). A device a contact adds gets this client's messages
	// from at most this long after it joined.
	DeviceListTTL time.Duration
	// HTTPClient makes the client's requests and WebSocket connections;
	// nil means http.DefaultClient. Set it to trust a private CA.
	HTTPClient *http.Client
	// OnEvent receives the client's events. It is called from the client's
	// goroutines, one call at a time, and must not call the Client's
	// methods (hand the event to another goroutine to do that). Message
	// events of one sender come in the order the messages were sent.
	OnEvent func(Event)
	// PreKeyBatch is how many one-time prekeys the client keeps on the
	// server (default 20). Every session a peer starts while the client is
	// offline uses one.
	PreKeyBatch int
	// MinPreKeys is the server-side count below which the client uploads
	// more, up to PreKeyBatch (default 5).
	MinPreKeys int

	// MaxHeld and MaxHeldBytes bound the envelopes held back from one
	// sender while its changed identity key waits for approval (default
	// 100 envelopes and 1 MiB; MaxHeldBytes at least MaxEnvelopeSize).
	// The envelopes over either bound stay unacknowledged on the server
	// until the user approves: see "Limits" in the package docs.
	MaxHeld      int
	MaxHeldBytes int64
	// MaxEnvelopeSize is the longest envelope the client looks at
	// (default api.MaxEnvelopeSize, the relay's own limit); a longer one
	// is dropped before any decryption.
	MaxEnvelopeSize int
	// FailedDecryptBurst and FailedDecryptRate limit, per peer, the
	// envelopes that fail to decrypt: a peer may cause FailedDecryptBurst
	// failures at once (default 10), and then FailedDecryptRate per second
	// (default 0.2). Beyond that its envelopes are dropped without being
	// decrypted until the allowance has grown back.
	FailedDecryptBurst int
	FailedDecryptRate  float64

	// now is the limiter's clock; nil means time.Now. Tests set it.
	now func() time.Time
	// joinFresh makes a device join with an identity key of its own
	// instead of the account's, and Link taken as the server's code, as
	// a device the server added would: tests set it.
	joinFresh bool
}

// EventKind says what an Event reports.
type EventKind int

const (
	// EventMessage: device Device of Peer sent Text; in Group, if it is a
	// group message. If Peer is this account (another device of it), To
	// is the peer the message was sent to, or empty for a group message:
	// a copy of what the user sent from that device.
	EventMessage EventKind = iota
	// EventIdentityChanged: Peer's identity key is not the one trusted.
	// Safety is the safety number with the new key. Envelopes from Peer
	// are held back until ApproveIdentity.
	EventIdentityChanged
	// EventUndecryptable: an envelope from Peer could not be decrypted
	// (Err says why) and was dropped. After a peer reset its identity,
	// messages sent to the old one end up here.
	EventUndecryptable
	// EventSendFailed: the server refused an envelope for Peer (Err).
	EventSendFailed
	// EventSessionStarted: a new session with Peer, from its bundle;
	// OneTimePreKey says whether the bundle had a one-time prekey (if not,
	// the server had run out).
	EventSessionStarted
	// EventPreKeysUploaded: Count one-time prekeys are now on the server.
	EventPreKeysUploaded
	// EventConnected and EventDisconnected follow the relay connection;
	// Err says why it ended. The client reconnects by itself.
	EventConnected
	EventDisconnected
	// EventError: background work failed (Err), such as a prekey upload
	// or a frame the server refused without saying which.
	EventError
	// EventDropped: an envelope from Peer was dropped unread and
	// acknowledged. Err is ErrEnvelopeTooLarge or ErrThrottled, and Count
	// how many Peer has had dropped for that reason since the client was
	// opened.
	EventDropped
	// EventHeldFull: the envelopes held back from Peer (see
	// EventIdentityChanged) reached Config.MaxHeld or MaxHeldBytes; Count
	// are held. Peer's later envelopes are neither stored nor
	// acknowledged: they stay in the server's queue, where its limits
	// apply, until ApproveIdentity.
	EventHeldFull
	// EventGroup: Peer changed Group: Members are its members now (the
	// user among them, or not if Peer removed the user), Text says what
	// changed.
	EventGroup
	// EventDeviceRejected: the server lists device Device of Peer, but
	// its identity key is not the one of Peer's other devices (Err):
	// nothing is sent to it, and its messages are held as an identity
	// change. Someone who controls the server may have added it.
	EventDeviceRejected
)

// The reasons an EventDropped gives.
var (
	// ErrEnvelopeTooLarge: the envelope is over Config.MaxEnvelopeSize.
	ErrEnvelopeTooLarge = errors.New("client: envelope over the size limit")
	// ErrThrottled: too many envelopes from the sender failed to decrypt
	// lately (Config.FailedDecryptBurst and FailedDecryptRate).
	ErrThrottled = errors.New("client: too many undecryptable envelopes from this sender")
)

// Event is something the user should hear about.
type Event struct {
	Kind          EventKind
	Peer          string
	Device        uint32
	To            string
	Group         string
	Members       []string
	Text          string
	Safety        string
	Count         int
	OneTimePreKey bool
	Err           error
}

// IdentityChangedError reports that a peer's bundle carries an identity key
// other than the trusted one. Nothing was sent.
type IdentityChangedError struct {
	Peer   string
	Device uint32
	Safety string // safety number with the new key
}

func (e *IdentityChangedError) Error() string {
	return "identity key of " + e.Peer + " changed: compare safety numbers, then approve the new key"
}

// Client is a chat account. Its methods are safe for concurrent use.
type Client struct {
	cfg    Config
	name   string
	device uint32
	api    *serverAPI
	chat   *sql.DB

	// keysMu guards the ratchetkit store, which ResetIdentity replaces.
	keysMu sync.RWMutex
	keysDB *sql.DB
	st     *sqlstore.Store
	mgr    *session.Manager

	// sendMu makes session start, encryption and the outbox write of one
	// message atomic with respect to other sends, so the outbox order is
	// the encryption order.
	sendMu sync.Mutex
	// procMu serializes the processing of received envelopes with the
	// release of held ones, so a sender's messages are reported in order.
	procMu sync.Mutex
	// evMu serializes OnEvent calls.
	evMu sync.Mutex

	wake    chan struct{} // the outbox has new envelopes
	wmu     sync.Mutex
	waiters map[int64]chan error // Send calls waiting for the server
	lastSeq int64                // guarded by procMu
	pending map[store.Address]*keys.PublicKey
	pendMu  sync.Mutex
	// joinKey is the account's identity key pair while a device joins.
	joinKey *keys.IdentityKeyPair
	// pinned records the devices whose identity key has been checked
	// against their account's (see pin). Guarded by procMu.
	pinned   map[store.Address]bool
	lists    deviceLists
	failures *limiter        // guarded by procMu
	drops    map[dropKey]int // guarded by procMu
	// awaiting names the senders approved while envelopes of theirs were
	// left on the server: until the next connection brings those again,
	// in order, newer ones are left there too. Guarded by procMu.
	awaiting map[string]bool
	connMu   sync.Mutex
	stopConn context.CancelFunc
	connDone chan struct{}
}

// Open opens the client in cfg.Dir, registering a new account first if
// the directory has none.
func Open(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Dir == "" {
		return nil, errors.New("client: no directory")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.PreKeyBatch <= 0 {
		cfg.PreKeyBatch = 20
	}
	if cfg.MinPreKeys <= 0 {
		cfg.MinPreKeys = 5
	}
	if cfg.MinPreKeys > cfg.PreKeyBatch {
		return nil, errors.New("client: MinPreKeys above PreKeyBatch")
	}
	if err := cfg.setLimits(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, err
	}
	c := &Client{
		cfg:      cfg,
		wake:     make(chan struct{}, 1),
		waiters:  make(map[int64]chan error),
		pending:  make(map[store.Address]*keys.PublicKey),
		pinned:   make(map[store.Address]bool),
		drops:    make(map[dropKey]int),
		awaiting: make(map[string]bool),
	}
	c.failures = newLimiter(cfg.FailedDecryptRate, cfg.FailedDecryptBurst, cfg.now)
	var err error
	if c.chat, err = openSQLite(ctx, filepath.Join(cfg.Dir, "chat.db"), chatSchema); err != nil {
		return nil, err
	}
	if err := upgradeChat(ctx, c.chat); err != nil {
		c.chat.Close()
		return nil, err
	}
	c.lists.init(cfg.DeviceListTTL)
	acct, err := loadAccount(ctx, c.chat)
	switch {
	case err == nil:
		c.device = acct.device
	case errors.Is(err, errNoAccount) && cfg.Link != "":
		c.device = 0 // until the server says which
		if err := c.provisioned(ctx); err != nil {
			c.chat.Close()
			return nil, err
		}
	case errors.Is(err, errNoAccount):
		c.device = deviceID
	default:
		c.chat.Close()
		return nil, err
	}
	if err := c.openKeys(ctx); err != nil {
		c.chat.Close()
		return nil, err
	}
	switch {
	case acct != nil:
		err = c.resume(acct)
	case cfg.Link != "":
		err = c.join(ctx)
	default:
		err = c.register(ctx)
	}
	if err != nil {
		c.closeKeys()
		c.chat.Close()
		return nil, err
	}
	return c, nil
}

func (c *Client) resume(a *account) error {
	if c.cfg.Name != "" && c.cfg.Name != a.name {
		return fmt.Errorf("client: %s holds the account %q, not %q", c.cfg.Dir, a.name, c.cfg.Name)
	}
	if c.cfg.Server != "" && strings.TrimRight(c.cfg.Server, "/") != a.server {
		return fmt.Errorf("client: %s holds an account on %s, not %s", c.cfg.Dir, a.server, c.cfg.Server)
	}
	c.name, c.lastSeq = a.name, a.lastSeq
	c.api = &serverAPI{base: a.server, hc: c.cfg.HTTPClient, token: a.token}
	return nil
}

// keysPath is the ratchetkit store's file.
func (c *Client) keysPath() string { return filepath.Join(c.cfg.Dir, "keys.db") }

// openKeys opens the ratchetkit store and makes sure it holds an identity.
func (c *Client) openKeys(ctx context.Context) error {
	db, err := openSQLite(ctx, c.keysPath(), "")
	if err != nil {
		return err
	}
	st, err := sqlstore.Open(ctx, db, sqlstore.SQLite)
	if err != nil {
		db.Close()
		return err
	}
	mgr, err := session.New(st, &session.Config{
		OneTimePreKeys:    c.cfg.PreKeyBatch,
		MinOneTimePreKeys: c.cfg.MinPreKeys,
	})
	if err == nil && c.joinKey != nil {
		// A joining device takes the account's identity key, given by
		// the device that made the link code.
		err = st.Update(ctx, func(tx store.Tx) error {
			if _, err := tx.Local().Load(ctx); !errors.Is(err, store.ErrNotFound) {
				return err
			}
			return tx.Local().Save(ctx, &store.LocalIdentity{KeyPair: c.joinKey, DeviceID: c.device})
		})
	}
	if err == nil {
		err = mgr.Init(ctx, c.device)
	}
	if err != nil {
		st.Close()
		db.Close()
		return err
	}
	c.keysDB, c.st, c.mgr = db, st, mgr
	return nil
}

// closeKeys closes the ratchetkit store; closing it again does nothing.
func (c *Client) closeKeys() error {
	if c.st == nil {
		return nil
	}
	err := errors.Join(c.st.Close(), c.keysDB.Close())
	c.keysDB, c.st, c.mgr = nil, nil, nil
	return err
}

// removeKeys deletes the store's files, the SQLite journal files included.
func (c *Client) removeKeys() error {
	var errs []error
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		if err := os.Remove(c.keysPath() + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// register claims cfg.Name on cfg.Server with a fresh identity.
func (c *Client) register(ctx context.Context) error {
	if !api.ValidName(c.cfg.Name) {
		return fmt.Errorf("client: %q is not a valid name: 1 to %d characters of a-z, 0-9, '-' and '_'", c.cfg.Name, api.MaxNameLen)
	}
	if c.cfg.Server == "" {
		return errors.New("client: no server to register with")
	}
	c.name = c.cfg.Name
	c.api = &serverAPI{base: strings.TrimRight(c.cfg.Server, "/"), hc: c.cfg.HTTPClient}
	up, err := c.mgr.Upkeep(ctx)
	if err != nil {
		return err
	}
	resp, err := c.api.register(ctx, &api.RegisterRequest{
		Name:           c.name,
		Invite:         c.cfg.Invite,
		IdentityKey:    up.IdentityKey.Encode(),
		SignedPreKey:   signedPreKey(up),
		OneTimePreKeys: preKeys(up.OneTimePreKeys),
	})
	if err != nil {
		// Start from scratch next time, so that the keys uploaded then are
		// all the store holds.
		c.closeKeys()
		c.removeKeys()
		return fmt.Errorf("client: registering %q: %w", c.name, err)
	}
	c.api.token = resp.Token
	return saveAccount(ctx, c.chat, &account{server: c.api.base, name: c.name, token: resp.Token, device: deviceID})
}

func signedPreKey(up *session.PreKeyUpload) api.SignedPreKey {
	return api.SignedPreKey{ID: up.SignedPreKeyID, Key: up.SignedPreKey.Encode(), Signature: up.SignedPreKeySignature}
}

func preKeys(pks []session.PublicPreKey) []api.PreKey {
	out := make([]api.PreKey, len(pks))
	for i, pk := range pks {
		out[i] = api.PreKey{ID: pk.ID, Key: pk.Key.Encode()}
	}
	return out
}

// publishSignedPreKey rotates the signed prekey when it is due and
// publishes the current one. It runs on every connection: publishing is
// idempotent, and so a rotation whose upload failed is published the next
// time. One-time prekeys are left to topUp, which goes by the server's
// count.
func (c *Client) publishSignedPreKey(ctx context.Context) error {
	c.keysMu.RLock()
	defer c.keysMu.RUnlock()
	st, err := c.mgr.PreKeyStatus(ctx)
	if err != nil {
		return err
	}
	if st.RotationDue {
		if err := c.mgr.RotateSignedPreKey(ctx); err != nil {
			return err
		}
	}
	up, err := c.mgr.PreKeyUpload(ctx)
	if err != nil {
		return err
	}
	if err := c.api.setSignedPreKey(ctx, signedPreKey(up)); err != nil {
		return fmt.Errorf("client: publishing the signed prekey: %w", err)
	}
	return nil
}

// topUp uploads one-time prekeys when the server holds fewer than
// MinPreKeys. The server's count is what matters: the local store also
// holds prekeys the server handed out to peers who have not written yet.
func (c *Client) topUp(ctx context.Context, remaining int) error {
	if remaining >= c.cfg.MinPreKeys {
		return nil
	}
	c.keysMu.RLock()
	defer c.keysMu.RUnlock()
	pks, err := c.mgr.GenerateOneTimePreKeys(ctx, c.cfg.PreKeyBatch-remaining)
	if err != nil {
		return err
	}
	n, err := c.api.addPreKeys(ctx, preKeys(pks))
	if err != nil {
		return fmt.Errorf("client: uploading one-time prekeys: %w", err)
	}
	c.emit(Event{Kind: EventPreKeysUploaded, Count: n})
	return nil
}

// Name returns the account's user name.
func (c *Client) Name() string { return c.name }

// PreKeyCount asks the server how many of the client's one-time prekeys it
// holds.
func (c *Client) PreKeyCount(ctx context.Context) (int, error) { return c.api.count(ctx) }

func (c *Client) emit(ev Event) {
	if c.cfg.OnEvent == nil {
		return
	}
	c.evMu.Lock()
	defer c.evMu.Unlock()
	c.cfg.OnEvent(ev)
}

// addr is the address of name's first device.
func addr(name string) store.Address { return devAddr(name, deviceID) }

func devAddr(name string, dev uint32) store.Address { return store.Address{Name: name, DeviceID: dev} }

// SafetyNumber returns the safety number of the conversation with peer's
// first device, to compare with the peer's out of band: equal numbers mean
// each side has the other's real identity key. The devices of a user share
// one key, so one number covers them; DeviceSafetyNumber gives another
// device's.
func (c *Client) SafetyNumber(ctx context.Context, peer string) (string, error) {
	return c.DeviceSafetyNumber(ctx, peer, deviceID)
}

// DeviceSafetyNumber returns the safety number with device dev of peer,
// whose identity key this client must have seen.
func (c *Client) DeviceSafetyNumber(ctx context.Context, peer string, dev uint32) (string, error) {
	c.keysMu.RLock()
	defer c.keysMu.RUnlock()
	return c.mgr.SafetyNumber(ctx, c.name, devAddr(peer, dev))
}

// safetyWith returns the safety number with key as peer's identity key.
func (c *Client) safetyWith(ctx context.Context, peer string, key *keys.PublicKey) string {
	local, _, err := c.mgr.LocalIdentity(ctx)
	if err != nil {
		return ""
	}
	return session.SafetyNumber(c.name, local, peer, key)
}

// Send encrypts text for every device of peer, and a copy for each of
// this account's other devices, and returns once the server has stored
// every envelope. It starts a session with each device it has none with,
// from the device's bundle.
//
// If ctx ends after the envelopes are in the outbox, they stay there and
// go out when the relay is connected; the error then wraps ctx's.
func (c *Client) Send(ctx context.Context, peer, text string) error {
	ids, done, err := c.queue(ctx, peer, text, true)
	if err != nil {
		return err
	}
	return c.wait(ctx, ids, done)
}

// wait waits for the server's verdicts on the outbox envelopes ids, whose
// waiter is done, and returns the refusals, if any.
func (c *Client) wait(ctx context.Context, ids []int64, done chan error) error {
	var errs []error
	for range ids {
		select {
		case err := <-done:
			errs = append(errs, err)
		case <-ctx.Done():
			c.wmu.Lock()
			for _, id := range ids {
				delete(c.waiters, id)
			}
			c.wmu.Unlock()
			return fmt.Errorf("client: message queued, not yet stored by the server: %w", ctx.Err())
		}
	}
	return errors.Join(errs...)
}

// Queue is Send without the wait: it returns once the envelopes are in the
// outbox, connected or not. A refusal by the server comes as an
// EventSendFailed.
func (c *Client) Queue(ctx context.Context, peer, text string) error {
	_, _, err := c.queue(ctx, peer, text, false)
	return err
}

func (c *Client) queue(ctx context.Context, peer, text string, wait bool) ([]int64, chan error, error) {
	if !api.ValidName(peer) {
		return nil, nil, fmt.Errorf("client: %q is not a valid user name", peer)
	}
	if peer == c.name {
		return nil, nil, errors.New("client: cannot send to yourself")
	}
	if len(text) > MaxMessageSize {
		return nil, nil, fmt.Errorf("client: message over %d bytes", MaxMessageSize)
	}
	return c.encrypt(ctx, peer, text, wait)
}

// encrypt encrypts text for peer's devices and the copies for this
// account's other devices, and queues the envelopes in the outbox. If
// wait is set, done receives the server's verdicts.
func (c *Client) encrypt(ctx context.Context, peer, text string, wait bool) ([]int64, chan error, error) {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	c.keysMu.RLock()
	defer c.keysMu.RUnlock()
	envs, err := c.fanout(ctx, peer, (&content{Text: text}).bytes(), (&content{Text: text, To: peer}).bytes())
	if err != nil {
		return nil, nil, err
	}
	return c.enqueue(ctx, envs, wait)
}

// enqueue puts envs in the outbox, in order, and wakes the sender. If wait
// is set, done receives one verdict per envelope. Called with sendMu held.
func (c *Client) enqueue(ctx context.Context, envs []envelope, wait bool) ([]int64, chan error, error) {
	if len(envs) == 0 {
		return nil, nil, nil
	}
	// The waiter is in place before the sender can see the envelopes: it
	// looks waiters up under the same lock.
	c.wmu.Lock()
	ids, err := addOutbox(ctx, c.chat, envs)
	var done chan error
	if err == nil && wait {
		done = make(chan error, len(ids))
		for _, id := range ids {
			c.waiters[id] = done
		}
	}
	c.wmu.Unlock()
	if err != nil {
		return nil, nil, err
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return ids, done, nil
}

// startSession fetches the bundle of device a and starts a session from
// it. Called with keysMu held.
func (c *Client) startSession(ctx context.Context, a store.Address) error {
	xb, err := c.fetchBundle(ctx, a)
	if err != nil {
		return err
	}
	err = c.mgr.StartSession(ctx, a, xb)
	if ie, ok := errors.AsType[*session.IdentityError](err); ok {
		c.setPending(a, ie.Received)
		return &IdentityChangedError{Peer: a.Name, Device: a.DeviceID, Safety: c.safetyWith(ctx, a.Name, ie.Received)}
	}
	if err != nil {
		return fmt.Errorf("client: starting a session with %s: %w", deviceName(a), err)
	}
	c.emit(Event{Kind: EventSessionStarted, Peer: a.Name, Device: a.DeviceID, OneTimePreKey: xb.OneTimePreKey != nil})
	return nil
}

func (c *Client) setPending(a store.Address, key *keys.PublicKey) {
	c.pendMu.Lock()
	defer c.pendMu.Unlock()
	c.pending[a] = key
}

// ApproveIdentity accepts the new identity keys of peer's devices that an
// EventIdentityChanged or an *IdentityChangedError reported, and decrypts
// the envelopes held back meanwhile. Call it only once the user has
// compared the new safety number with the peer's. If envelopes of peer
// were left on the server over the bound (EventHeldFull), it reconnects,
// if connected, so that the server sends them again.
func (c *Client) ApproveIdentity(ctx context.Context, peer string) error {
	left, err := c.approve(ctx, peer)
	if err != nil || !left {
		return err
	}
	if !c.disconnect() {
		return nil
	}
	if err := c.Connect(ctx); err != nil {
		return fmt.Errorf("client: approved %s's key, but reconnecting for the rest of its messages failed: %w", peer, err)
	}
	return nil
}

// approve is ApproveIdentity under the locks; it reports whether envelopes
// of peer wait on the server.
func (c *Client) approve(ctx context.Context, peer string) (bool, error) {
	c.procMu.Lock()
	defer c.procMu.Unlock()
	c.keysMu.RLock()
	defer c.keysMu.RUnlock()
	found := map[store.Address]*keys.PublicKey{}
	c.pendMu.Lock()
	for a, k := range c.pending {
		if a.Name == peer {
			found[a] = k
		}
	}
	c.pendMu.Unlock()
	held, err := listHeld(ctx, c.chat, peer)
	if err != nil {
		return false, err
	}
	for _, h := range held {
		a := devAddr(peer, h.dev)
		if found[a] != nil || (len(h.body) > 0 && h.body[0] == senderKeyVersion) {
			continue
		}
		// After a restart the key is found again in the first held
		// envelope of each device.
		_, err := c.mgr.Decrypt(ctx, a, h.body)
		if ie, ok := errors.AsType[*session.IdentityError](err); ok {
			found[a] = ie.Received
		}
	}
	if len(found) == 0 {
		return false, fmt.Errorf("client: no identity change of %s to approve", peer)
	}
	for a, key := range found {
		if err := c.mgr.ApproveIdentity(ctx, a, key); err != nil {
			return false, err
		}
		c.pendMu.Lock()
		delete(c.pending, a)
		c.pendMu.Unlock()
	}
	for _, h := range held {
		if err := ignoreDropped(c.decrypt(ctx, h.seq, device{peer, h.dev}, h.body, true)); err != nil {
			return false, err
		}
		if err := deleteHeld(ctx, c.chat, h.seq, peer); err != nil {
			return false, err
		}
	}
	t, err := heldFor(ctx, c.chat, peer)
	if err != nil || t.leftFrom == 0 {
		return false, err
	}
	c.awaiting[peer] = true
	return true, nil
}

// errTransient marks a failure that says nothing about the envelope (the
// store or the context failed): it is not acknowledged, so the server
// delivers it again.
type errTransient struct{ err error }

func (e errTransient) Error() string { return e.err.Error() }
func (e errTransient) Unwrap() error { return e.err }

// messageError reports whether a Decrypt error is about the envelope
// itself, so that trying again cannot help.
func messageError(err error) bool {
	for _, e := range []error{
		session.ErrMalformed, session.ErrTooLarge, session.ErrUnknownType, session.ErrNoSession, session.ErrUnknownPreKey,
		keys.ErrInvalidPublicKey, keys.ErrSmallOrder,
		ratchet.ErrTooManySkipped, ratchet.ErrAuthentication, ratchet.ErrCounterOverflow,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// errLeft says that receive left an envelope on the server: it must not
// be acknowledged, and the connection goes on.
var errLeft = errors.New("client: envelope left on the server")

// errDropped says that decrypt dropped an envelope unread. It is
// acknowledged, but nothing is written: an envelope never reported may
// come again after a lost ack, and dropping is cheapest without the
// transaction that moves lastSeq.
var errDropped = errors.New("client: envelope dropped")

// receive processes one envelope from the relay. An error means it must
// not be acknowledged.
//
// Deciding what to do with an envelope reads one row of held_total, never
// the held envelopes themselves: a sender with envelopes held costs the
// same as any other.
func (c *Client) receive(ctx context.Context, seq int64, from string, body []byte) error {
	return c.receiveFrom(ctx, seq, device{from, deviceID}, body)
}

// device is one device of a user, as the relay names a sender.
type device struct {
	user string
	id   uint32
}

// receiveFrom is receive of an envelope from one device of a user.
func (c *Client) receiveFrom(ctx context.Context, seq int64, fromDev device, body []byte) error {
	c.procMu.Lock()
	defer c.procMu.Unlock()
	from := fromDev.user
	if !api.ValidName(from) || fromDev.id == 0 || fromDev.id > 1<<20 {
		return nil
	}
	if len(body) > c.cfg.MaxEnvelopeSize {
		c.dropped(from, ErrEnvelopeTooLarge)
		return nil
	}
	t, err := heldFor(ctx, c.chat, from)
	if err != nil {
		return errTransient{err}
	}
	leftOver := t.leftFrom > 0 && seq >= t.leftFrom
	switch {
	case leftOver && t.count > 0:
		// Over the bound, waiting for approval: it stays on the server.
		// (Its sequence number may be below lastSeq, which other senders
		// advanced: it was never processed all the same.)
		return c.hold(ctx, seq, fromDev, body)
	case leftOver:
		// Approved since: the envelopes left on the server come in again,
		// in order, on the connection after the approval.
		if c.awaiting[from] {
			return errLeft
		}
		if seq <= t.doneTo {
			return nil // processed already; only the ack was lost
		}
		if err := c.decryptLocked(ctx, seq, fromDev, body); err != nil {
			return ignoreDropped(err)
		}
		if err := releasedTo(ctx, c.chat, from, seq); err != nil {
			return errTransient{err}
		}
	case seq <= c.lastSeq:
		// Processed before the last connection dropped; only the ack was
		// lost.
		return nil
	case t.count > 0:
		// Earlier envelopes of this sender wait for approval; this one
		// waits behind them, if there is room.
		if err := c.hold(ctx, seq, fromDev, body); err != nil {
			return err
		}
	default:
		if err := c.decryptLocked(ctx, seq, fromDev, body); err != nil {
			return ignoreDropped(err)
		}
	}
	if err := setLastSeq(ctx, c.chat, seq); err != nil {
		return errTransient{err}
	}
	c.lastSeq = max(c.lastSeq, seq)
	return nil
}

// ignoreDropped turns errDropped into success: the envelope is done with.
func ignoreDropped(err error) error {
	if errors.Is(err, errDropped) {
		return nil
	}
	return err
}

// decryptLocked is decrypt with keysMu taken.
func (c *Client) decryptLocked(ctx context.Context, seq int64, from device, body []byte) error {
	c.keysMu.RLock()
	defer c.keysMu.RUnlock()
	return c.decrypt(ctx, seq, from, body, false)
}

// hold keeps an envelope of a sender whose identity change waits for
// approval, or, if the sender's held envelopes are at their bound, returns
// errLeft so that it stays on the server. Called with procMu held.
func (c *Client) hold(ctx context.Context, seq int64, fromDev device, body []byte) error {
	from := fromDev.user
	kept, t, err := hold(ctx, c.chat, seq, from, fromDev.id, body, c.cfg.MaxHeld, c.cfg.MaxHeldBytes)
	if err != nil {
		return errTransient{err}
	}
	if kept {
		return nil
	}
	if seq == t.leftTo && t.left == 1 {
		c.emit(Event{Kind: EventHeldFull, Peer: from, Count: int(t.count)})
	}
	return errLeft
}

// dropKey counts the envelopes dropped from one peer for one reason.
type dropKey struct {
	peer   string
	reason error
}

// dropped reports an envelope dropped unread. Called with procMu held.
func (c *Client) dropped(from string, reason error) {
	k := dropKey{from, reason}
	if _, ok := c.drops[k]; !ok && len(c.drops) >= maxLimited {
		// Many names dropping: the counts start over rather than grow.
		clear(c.drops)
	}
	c.drops[k]++
	c.emit(Event{Kind: EventDropped, Peer: from, Err: reason, Count: c.drops[k]})
}

// decrypt decrypts and reports one envelope. Called with procMu and
// keysMu held.
//
// A ratchet message is tried on every session stored for its sender (up
// to 41), and a forged one fails only after all of them have done their
// work, which can be a DH ratchet step and thousands of chain steps each.
// So each failure takes a token from the sender's allowance, and a sender
// with none left has its envelopes dropped before they reach the session
// layer. A legitimate peer's envelopes decrypt and take nothing; only a
// peer that sends garbage (or many messages to an identity this client
// has reset) runs out. A dropped envelope returns errDropped.
func (c *Client) decrypt(ctx context.Context, seq int64, fromDev device, body []byte, released bool) error {
	from := fromDev.user
	if !c.failures.allowed(from) {
		c.dropped(from, ErrThrottled)
		return errDropped
	}
	if len(body) > 0 && body[0] == senderKeyVersion {
		return c.decryptGroup(ctx, fromDev, body)
	}
	a := devAddr(from, fromDev.id)
	if err := c.pin(ctx, a); err != nil {
		return errTransient{err}
	}
	pt, err := c.mgr.Decrypt(ctx, a, body)
	var ct *content
	if err == nil {
		c.lists.saw(from, fromDev.id)
		ct, err = parseContent(pt)
	}
	switch ie, isIdentity := errors.AsType[*session.IdentityError](err); {
	case err == nil:
		c.deliver(ctx, fromDev, ct)
	case errors.Is(err, errBadContent):
		c.failures.take(from)
		c.emit(Event{Kind: EventUndecryptable, Peer: from, Device: fromDev.id, Err: err})
	case errors.Is(err, ratchet.ErrDuplicate):
		// A repeat of a message already reported: drop it quietly.
		c.failures.take(from)
	case isIdentity && !released:
		if err := c.hold(ctx, seq, fromDev, body); err != nil {
			return err
		}
		c.setPending(a, ie.Received)
		c.emit(Event{Kind: EventIdentityChanged, Peer: from, Device: fromDev.id, Safety: c.safetyWith(ctx, from, ie.Received)})
	case isIdentity || messageError(err):
		c.failures.take(from)
		c.emit(Event{Kind: EventUndecryptable, Peer: from, Device: fromDev.id, Err: err})
	default:
		return errTransient{err}
	}
	return nil
}

// deliver acts on a decrypted content from fromDev: a text message, a
// copy of one this account sent from another device, or a group's state
// and sender key. Called with procMu and keysMu held.
func (c *Client) deliver(ctx context.Context, fromDev device, ct *content) {
	if ct.Group != nil {
		c.onGroup(ctx, fromDev, ct)
		return
	}
	ev := Event{Kind: EventMessage, Peer: fromDev.user, Device: fromDev.id, Text: ct.Text}
	if fromDev.user == c.name {
		ev.To = ct.To
	}
	c.emit(ev)
}

// ResetIdentity replaces the client's identity key and every prekey, and
// forgets every session and every peer's identity key: the account starts
// over under the same name. Peers see an identity change on the next
// message; messages they send to the old identity cannot be decrypted.
func (c *Client) ResetIdentity(ctx context.Context) error {
	connected := c.disconnect()
	c.procMu.Lock()
	defer c.procMu.Unlock()
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	c.keysMu.Lock()
	defer c.keysMu.Unlock()
	if err := c.closeKeys(); err != nil {
		return err
	}
	if err := c.removeKeys(); err != nil {
		return err
	}
	if err := c.openKeys(ctx); err != nil {
		return err
	}
	up, err := c.mgr.Upkeep(ctx)
	if err != nil {
		return err
	}
	n, err := c.api.replaceKeys(ctx, &api.KeysRequest{
		IdentityKey:    up.IdentityKey.Encode(),
		SignedPreKey:   signedPreKey(up),
		OneTimePreKeys: preKeys(up.OneTimePreKeys),
	})
	if err != nil {
		return fmt.Errorf("client: publishing the new identity: %w", err)
	}
	// Envelopes held for the old identity can never be decrypted now.
	if err := deleteAllHeld(ctx, c.chat); err != nil {
		return err
	}
	c.pendMu.Lock()
	clear(c.pending)
	c.pendMu.Unlock()
	c.emit(Event{Kind: EventPreKeysUploaded, Count: n})
	if connected {
		return c.Connect(ctx)
	}
	return nil
}

// Close disconnects and closes the client's databases. Envelopes in the
// outbox go out after the next Open and Connect.
func (c *Client) Close() error {
	c.disconnect()
	c.keysMu.Lock()
	defer c.keysMu.Unlock()
	return errors.Join(c.closeKeys(), c.chat.Close())
}

// Connect connects to the relay and keeps the connection up, reconnecting
// after failures, until Disconnect or Close. It returns once the first
// connection is up, or with the error that prevented it.
func (c *Client) Connect(ctx context.Context) error {
	c.connMu.Lock()
	defer c.connMu.Unlock()
	if c.stopConn != nil {
		return nil
	}
	ws, err := c.dial(ctx)
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	c.stopConn, c.connDone = cancel, make(chan struct{})
	go c.supervise(runCtx, ws, c.connDone)
	return nil
}

// Disconnect closes the relay connection. Received envelopes being
// processed are finished first.
func (c *Client) Disconnect() { c.disconnect() }

func (c *Client) disconnect() (was bool) {
	c.connMu.Lock()
	defer c.connMu.Unlock()
	if c.stopConn == nil {
		return false
	}
	c.stopConn()
	<-c.connDone
	c.stopConn, c.connDone = nil, nil
	return true
}

func (c *Client) dial(ctx context.Context) (*websocket.Conn, error) {
	h := http.Header{}
	h.Set("Authorization", "Bearer "+c.api.token)
	ws, _, err := websocket.Dial(ctx, c.api.wsURL(), &websocket.DialOptions{HTTPClient: c.cfg.HTTPClient, HTTPHeader: h})
	if err != nil {
		return nil, fmt.Errorf("client: connecting to the relay: %w", err)
	}
	ws.SetReadLimit(api.MaxFrameSize)
	return ws, nil
}

// firstBackoff is the wait before the first redial after a lost
// connection; it doubles with each failed attempt, up to maxBackoff.
var firstBackoff = 100 * time.Millisecond

const maxBackoff = 5 * time.Second

// supervise runs connections until ctx ends, redialling with backoff. A
// server that closes the connection with status 1001 (going away) is
// shutting down gracefully and asks to be replaced: the first redial then
// goes at once, which a load balancer sends to another instance.
func (c *Client) supervise(ctx context.Context, ws *websocket.Conn, done chan struct{}) {
	defer close(done)
	backoff := firstBackoff
	for {
		c.emit(Event{Kind: EventConnected})
		err := c.run(ctx, ws)
		if ctx.Err() != nil {
			c.emit(Event{Kind: EventDisconnected})
			return
		}
		c.emit(Event{Kind: EventDisconnected, Err: err})
		wait := backoff
		if websocket.CloseStatus(err) == websocket.StatusGoingAway {
			wait = 0
		} else {
			backoff = min(2*backoff, maxBackoff)
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			ws, err = c.dial(dctx)
			cancel()
			if err == nil {
				backoff = firstBackoff
				break
			}
			wait = backoff
			backoff = min(2*backoff, maxBackoff)
		}
	}
}

// run serves one connection: a reader that routes frames, a processor for
// received envelopes, a sender for the outbox, and prekey upkeep. It
// returns, with the connection closed, when any of them fails or ctx ends.
//
// Ending ctx closes the connection gracefully: the processor finishes and
// acknowledges the envelope in hand before the close frame goes out. (The
// reader's Read does not take ctx, because the WebSocket library closes a
// connection at once when a Read's context ends, cutting off those acks.)
func (c *Client) run(ctx context.Context, ws *websocket.Conn) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	c.newConnection()
	incoming := make(chan api.Frame, 256)
	replies := make(chan api.Frame, 16)
	counts := make(chan int, 1)

	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		cancel(c.read(ctx, ws, incoming, replies, counts))
	}()
	var wg sync.WaitGroup
	wg.Go(func() { cancel(ping(ctx, ws)) })
	wg.Go(func() { cancel(c.process(ctx, ws, incoming)) })
	wg.Go(func() { cancel(c.sendOutbox(ctx, ws, replies)) })
	wg.Go(func() {
		if err := c.publishSignedPreKey(ctx); err != nil && ctx.Err() == nil {
			c.emit(Event{Kind: EventError, Err: err})
		}
		for {
			select {
			case <-ctx.Done():
				return
			case n := <-counts:
				if err := c.topUp(ctx, n); err != nil && ctx.Err() == nil {
					c.emit(Event{Kind: EventError, Err: err})
				}
			}
		}
	})
	<-ctx.Done()
	err := context.Cause(ctx)
	wg.Wait()
	ws.Close(websocket.StatusNormalClosure, "")
	<-readDone
	return err
}

// newConnection notes that a connection starts: it brings every
// unacknowledged envelope again, in order, those left on the server
// included.
func (c *Client) newConnection() {
	c.procMu.Lock()
	defer c.procMu.Unlock()
	clear(c.awaiting)
}

// pingInterval is how often the client checks that the server still
// answers: without it, a connection whose network path died could wait
// for a frame forever.
const pingInterval = 30 * time.Second

func ping(ctx context.Context, ws *websocket.Conn) error {
	t := time.NewTicker(pingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
		err := ws.Ping(pctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			return fmt.Errorf("client: the server stopped answering: %w", err)
		}
	}
}

// read routes the server's frames until the connection ends. Frames that
// arrive once ctx has ended are dropped: what they carry comes again on the
// next connection.
func (c *Client) read(ctx context.Context, ws *websocket.Conn, incoming, replies chan<- api.Frame, counts chan int) error {
	for {
		_, data, err := ws.Read(context.WithoutCancel(ctx))
		if err != nil {
			return err
		}
		var f api.Frame
		if err := json.Unmarshal(data, &f); err != nil {
			return fmt.Errorf("client: bad frame from the server: %w", err)
		}
		switch f.Type {
		case api.FrameMessage:
			select {
			case incoming <- f:
			case <-ctx.Done():
			}
		case api.FrameSent, api.FrameError:
			if f.ID == "" {
				c.emit(Event{Kind: EventError, Err: &api.Error{Code: f.Code, Message: f.Message}})
				continue
			}
			select {
			case replies <- f:
			case <-ctx.Done():
			}
		case api.FramePreKeys:
			if f.Remaining != nil {
				select {
				case <-counts:
				default:
				}
				counts <- *f.Remaining
			}
		}
	}
}

func (c *Client) process(ctx context.Context, ws *websocket.Conn, incoming <-chan api.Frame) error {
	for {
		var f api.Frame
		select {
		case <-ctx.Done():
			return nil
		case f = <-incoming:
		}
		// An envelope in hand is processed and acknowledged even if ctx
		// has ended (Disconnect closes the connection only after this
		// returns); if the ack is lost anyway, the sequence number
		// recognises the envelope when it comes again.
		switch err := c.receiveFrom(context.WithoutCancel(ctx), f.Seq, device{f.From, max(f.FromDevice, 1)}, f.Body); {
		case errors.Is(err, errLeft):
			continue
		case err != nil:
			return err
		}
		if err := writeFrame(ctx, ws, &api.Frame{Type: api.FrameAck, Seq: f.Seq}); err != nil {
			return err
		}
	}
}

// sendOutbox sends the outbox in order, one envelope at a time: each waits
// for the server's answer, so that a refused envelope cannot overtake or
// be overtaken.
func (c *Client) sendOutbox(ctx context.Context, ws *websocket.Conn, replies <-chan api.Frame) error {
	for {
		out, err := listOutbox(ctx, c.chat)
		if err != nil {
			return err
		}
		for _, o := range out {
			id := strconv.FormatInt(o.id, 10)
			if err := writeFrame(ctx, ws, &api.Frame{Type: api.FrameSend, ID: id, To: o.to, Device: o.dev, Body: o.body}); err != nil {
				return err
			}
			var reply api.Frame
			for reply.ID != id {
				select {
				case <-ctx.Done():
					return nil
				case reply = <-replies:
				}
			}
			var verdict error
			if reply.Type == api.FrameError {
				verdict = &api.Error{Code: reply.Code, Message: reply.Message}
				c.emit(Event{Kind: EventSendFailed, Peer: o.to, Device: o.dev, Err: verdict})
				if reply.Code == api.CodeUnknownDevice {
					c.lists.forget(o.to)
				}
			}
			if err := c.settle(ctx, o.id, verdict); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-c.wake:
		}
	}
}

// settle records the server's verdict on outbox envelope id: it leaves
// the outbox, and a Send waiting for it returns. Once the verdict is in
// hand, the connection it came on no longer matters, so neither step
// depends on ctx. This matters when the connection drops just after the
// server's answer (an instance killed between its reply and the next
// frame): the SQLite driver, when a statement's context ends while it
// runs, reports the context's error even if the statement completed, so
// a delete under ctx could remove the envelope and still fail, and the
// Send would then never hear the verdict, with nothing left in the
// outbox to bring it on the next connection. The waiter hears the
// verdict even if the delete fails: the server has decided, and the
// envelope that stays is only sent (and stored) again.
func (c *Client) settle(ctx context.Context, id int64, verdict error) error {
	err := removeOutbox(context.WithoutCancel(ctx), c.chat, id)
	c.wmu.Lock()
	if w, ok := c.waiters[id]; ok {
		w <- verdict
		delete(c.waiters, id)
	}
	c.wmu.Unlock()
	return err
}

// removeOutbox is deleteOutbox, replaced in tests by one that acts as the
// SQLite driver does when a statement's context ends while it runs.
var removeOutbox = deleteOutbox

// writeTimeout bounds a write or ping on the relay connection.
const writeTimeout = 5 * time.Second

// writeFrame writes one frame. Its deadline ignores ctx's cancellation: the
// WebSocket library closes the connection when a write's context ends, and
// a Disconnect must not cut off the acks still being written.
func writeFrame(ctx context.Context, ws *websocket.Conn, f *api.Frame) error {
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	return ws.Write(ctx, websocket.MessageText, b)
}

package client

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ratchetkit/ratchetkit/examples/chat/api"
	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/session"
	"github.com/ratchetkit/ratchetkit/store"
	"github.com/ratchetkit/ratchetkit/x3dh"
)

// deviceLists caches users' device lists.
type deviceLists struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]deviceList
	// fresh names a user whose list is fetched anew every time until
	// freshUntil: the account itself, after it gave out a link code.
	fresh      string
	freshUntil time.Time
}

type deviceList struct {
	ids     []uint32
	fetched time.Time
}

// maxCachedLists bounds the cache; beyond it, it starts over.
const maxCachedLists = 1024

func (l *deviceLists) init(ttl time.Duration) {
	if ttl == 0 {
		ttl = 30 * time.Second
	}
	l.ttl, l.m = ttl, make(map[string]deviceList)
}

// get returns name's device ids, from the cache while it is fresh.
func (l *deviceLists) get(ctx context.Context, s *serverAPI, name string) ([]uint32, error) {
	l.mu.Lock()
	e, ok := l.m[name]
	always := name == l.fresh && time.Now().Before(l.freshUntil)
	l.mu.Unlock()
	if ok && !always && time.Since(e.fetched) < l.ttl {
		return e.ids, nil
	}
	ids, err := s.devices(ctx, name)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	if len(l.m) >= maxCachedLists {
		clear(l.m)
	}
	l.m[name] = deviceList{ids: ids, fetched: time.Now()}
	l.mu.Unlock()
	return ids, nil
}

// saw adds dev to name's cached list, if there is one without it: a
// message came from it.
func (l *deviceLists) saw(name string, dev uint32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.m[name]; ok && !slices.Contains(e.ids, dev) {
		e.ids = append(slices.Clone(e.ids), dev)
		slices.Sort(e.ids)
		l.m[name] = e
	}
}

// freshFor makes name's list be fetched anew on every use for d: a
// device is about to join, and the others should write to it at once.
func (l *deviceLists) freshFor(name string, d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fresh, l.freshUntil = name, time.Now().Add(d)
}

// forget drops name's list, after the server refused a device of it.
func (l *deviceLists) forget(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, name)
}

func (s *serverAPI) devices(ctx context.Context, name string) ([]uint32, error) {
	var d api.Devices
	if err := s.do(ctx, "GET", "/v1/users/"+name+"/devices", nil, &d); err != nil {
		return nil, fmt.Errorf("client: fetching %s's devices: %w", name, err)
	}
	if d.Name != name || len(d.Devices) == 0 || len(d.Devices) > api.MaxDevices {
		return nil, fmt.Errorf("client: the server's device list of %s is malformed", name)
	}
	for _, id := range d.Devices {
		if id == 0 {
			return nil, fmt.Errorf("client: the server's device list of %s is malformed", name)
		}
	}
	return d.Devices, nil
}

func (s *serverAPI) link(ctx context.Context, req *api.LinkRequest) error {
	return s.do(ctx, "POST", "/v1/devices/link", req, nil)
}

func (s *serverAPI) provision(ctx context.Context, name, code string) ([]byte, error) {
	var p api.Provision
	if err := s.do(ctx, "POST", "/v1/devices/provision", &api.ProvisionRequest{Name: name, LinkCode: code}, &p); err != nil {
		return nil, err
	}
	return p.Provision, nil
}

// A link code is 128 random bits, which the user carries from the device
// that made it to the new one, in 26 characters of base32. Two keys come
// from it by HKDF-SHA256: the code the server checks (hexadecimal, so
// that the secret itself never reaches the server), and the key of the
// provisioning message, AES-256-GCM under a random nonce, whose
// plaintext is the account's identity private key and whose associated
// data names the account. The server stores the message and hands it to
// whoever presents the code, but cannot open it.
const (
	linkSecretSize   = 16
	linkCodeInfo     = "ratchetkit chat link code"
	linkKeyInfo      = "ratchetkit chat provisioning key"
	provisionADLabel = "ratchetkit chat provisioning message for "
)

var linkEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

var errBadLinkCode = errors.New("client: a link code is 26 letters and digits, as /device add shows it")

// linkKeys derives the server's code and the provisioning key from the
// user's link code.
func linkKeys(userCode string) (serverCode string, key []byte, err error) {
	secret, err := linkEncoding.DecodeString(strings.ToUpper(strings.TrimSpace(userCode)))
	if err != nil || len(secret) != linkSecretSize {
		return "", nil, errBadLinkCode
	}
	defer clear(secret)
	code, err := hkdf.Key(sha256.New, secret, nil, linkCodeInfo, 32)
	if err != nil {
		return "", nil, err
	}
	if key, err = hkdf.Key(sha256.New, secret, nil, linkKeyInfo, 32); err != nil {
		return "", nil, err
	}
	return hex.EncodeToString(code), key, nil
}

func provisionAEAD(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

func (s *serverAPI) addDevice(ctx context.Context, req *api.DeviceRequest) (*api.RegisterResponse, error) {
	var resp api.RegisterResponse
	if err := s.do(ctx, "POST", "/v1/devices", req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// Device returns this device's id within the account: 1 for the device
// that registered it.
func (c *Client) Device() uint32 { return c.device }

// LinkCode makes a code with which one new device can join this account,
// once, within ten minutes (api.LinkTTL): give it to the new device as
// Config.Link. The code carries the account's identity key to the new
// device, through the server, which cannot read it: anyone who has the
// code in those ten minutes can join the account and read what is sent
// to it from then on, so it must go from screen to device and nowhere
// else. Asking again voids the previous code. For as long as the code is
// good, this device asks for the account's device list before every
// message, so that the new device gets the next one.
func (c *Client) LinkCode(ctx context.Context) (string, error) {
	var secret [linkSecretSize]byte
	rand.Read(secret[:])
	userCode := strings.ToLower(linkEncoding.EncodeToString(secret[:]))
	clear(secret[:])
	serverCode, key, err := linkKeys(userCode)
	if err != nil {
		return "", err
	}
	defer clear(key)
	var priv []byte
	err = c.st.View(ctx, func(tx store.Tx) error {
		id, err := tx.Local().Load(ctx)
		if err != nil {
			return err
		}
		priv = id.KeyPair.PrivateKey().Bytes()
		id.KeyPair.Clear()
		return nil
	})
	if err != nil {
		return "", err
	}
	defer clear(priv)
	aead, err := provisionAEAD(key)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	msg := aead.Seal(nonce, nonce, priv, []byte(provisionADLabel+c.name))
	if err := c.api.link(ctx, &api.LinkRequest{Code: serverCode, Provision: msg}); err != nil {
		return "", fmt.Errorf("client: registering a link code: %w", err)
	}
	c.lists.freshFor(c.name, api.LinkTTL*time.Second)
	return userCode, nil
}

// provisioned fetches and opens the provisioning message of cfg.Link,
// for a device about to join cfg.Name's account: c.joinKey is then the
// account's identity key pair.
func (c *Client) provisioned(ctx context.Context) error {
	if !api.ValidName(c.cfg.Name) {
		return fmt.Errorf("client: %q is not a valid name", c.cfg.Name)
	}
	if c.cfg.Server == "" {
		return fmt.Errorf("client: no server to join %s's account on", c.cfg.Name)
	}
	c.name = c.cfg.Name
	c.api = &serverAPI{base: strings.TrimRight(c.cfg.Server, "/"), hc: c.cfg.HTTPClient}
	if c.cfg.joinFresh {
		return nil
	}
	serverCode, key, err := linkKeys(c.cfg.Link)
	if err != nil {
		return err
	}
	defer clear(key)
	msg, err := c.api.provision(ctx, c.name, serverCode)
	if err != nil {
		return fmt.Errorf("client: fetching what the link code gives: %w", err)
	}
	aead, err := provisionAEAD(key)
	if err != nil {
		return err
	}
	if len(msg) < aead.NonceSize() {
		return errBadProvision
	}
	priv, err := aead.Open(nil, msg[:aead.NonceSize()], msg[aead.NonceSize():], []byte(provisionADLabel+c.name))
	if err != nil {
		return errBadProvision
	}
	defer clear(priv)
	if c.joinKey, err = keys.NewIdentityKeyPair(priv); err != nil {
		return errBadProvision
	}
	return nil
}

var errBadProvision = errors.New("client: the link code's provisioning message does not open: the code is mistyped, or the server changed the message")

// pin checks, once per device and process, the identity key of device a
// against its account's: a device of a user that this client has no key
// for yet is given the key of the user's other devices (or, for this
// account, its own) as the trusted one before its first message is
// decrypted, so that a device with another key (one the server added, not
// the user) is refused as an identity change, with the warning and the
// hold that brings. A device of a user with no device known is trusted
// on first use, as any peer. Called with procMu and keysMu held.
func (c *Client) pin(ctx context.Context, a store.Address) error {
	if c.pinned[a] {
		return nil
	}
	if _, err := c.mgr.Identity(ctx, a); !errors.Is(err, store.ErrNotFound) {
		if err == nil {
			c.pinned[a] = true
		}
		return err
	}
	k, err := c.accountKey(ctx, a.Name)
	if err != nil || k == nil {
		return err
	}
	if err := c.mgr.ApproveIdentity(ctx, a, k); err != nil {
		return err
	}
	if len(c.pinned) >= maxCachedLists {
		clear(c.pinned)
	}
	c.pinned[a] = true
	return nil
}

// accountKey returns the identity key this client trusts for user's
// account: its own for itself, else the one trusted for the lowest device
// of user it has a session with, or nil if none. Called with keysMu held.
func (c *Client) accountKey(ctx context.Context, user string) (*keys.PublicKey, error) {
	if user == c.name {
		k, _, err := c.mgr.LocalIdentity(ctx)
		return k, err
	}
	devs, err := c.mgr.Devices(ctx, user)
	if err != nil {
		return nil, err
	}
	for _, d := range devs {
		switch k, err := c.mgr.Identity(ctx, devAddr(user, d)); {
		case err == nil:
			return k, nil
		case !errors.Is(err, store.ErrNotFound):
			return nil, err
		}
	}
	return nil, nil
}

// errOtherKey reports a device whose identity key is not its account's.
var errOtherKey = errors.New("client: the device's identity key is not the one of its account's other devices")

// Devices returns the device ids of user, as the server lists them.
func (c *Client) Devices(ctx context.Context, user string) ([]uint32, error) {
	return c.api.devices(ctx, user)
}

// join adds this directory to cfg.Name's account as a new device, with
// the link code cfg.Link and the account's identity key, which
// provisioned has put in the store. The store was made for device 0, the
// id not being known before the server assigns it; the local identity is
// then saved under the assigned id.
func (c *Client) join(ctx context.Context) error {
	serverCode := c.cfg.Link
	if !c.cfg.joinFresh {
		var err error
		if serverCode, _, err = linkKeys(c.cfg.Link); err != nil {
			return err
		}
	}
	up, err := c.mgr.Upkeep(ctx)
	if err != nil {
		return err
	}
	resp, err := c.api.addDevice(ctx, &api.DeviceRequest{
		Name:           c.name,
		LinkCode:       serverCode,
		IdentityKey:    up.IdentityKey.Encode(),
		SignedPreKey:   signedPreKey(up),
		OneTimePreKeys: preKeys(up.OneTimePreKeys),
	})
	if err == nil && (resp.Device < 2 || resp.Device > 1<<20) {
		err = fmt.Errorf("the server assigned device id %d", resp.Device)
	}
	if err != nil {
		c.closeKeys()
		c.removeKeys()
		if c.joinKey != nil {
			c.joinKey.Clear()
		}
		return fmt.Errorf("client: joining %q's account: %w", c.name, err)
	}
	err = c.st.Update(ctx, func(tx store.Tx) error {
		id, err := tx.Local().Load(ctx)
		if err != nil {
			return err
		}
		id.DeviceID = resp.Device
		return tx.Local().Save(ctx, id)
	})
	if err != nil {
		return err
	}
	c.device = resp.Device
	if c.joinKey != nil {
		// The store has it now; this copy is not needed.
		c.joinKey.Clear()
		c.joinKey = nil
	}
	c.closeKeys()
	if err := c.openKeys(ctx); err != nil {
		return err
	}
	c.api.token = resp.Token
	return saveAccount(ctx, c.chat, &account{server: c.api.base, name: c.name, token: resp.Token, device: c.device})
}

// envelope is one encrypted envelope for one device.
type envelope struct {
	to   store.Address
	body []byte
}

// fanout encrypts pt for every device of peer (but this one) and, if
// sync is not nil, sync for this account's other devices, starting
// sessions where needed. Called with sendMu and keysMu held.
func (c *Client) fanout(ctx context.Context, peer string, pt, sync []byte) ([]envelope, error) {
	devs, err := c.lists.get(ctx, c.api, peer)
	if err != nil {
		return nil, err
	}
	envs, err := c.encryptToDevices(ctx, []session.DeviceList{{Name: peer, Devices: devs}}, pt)
	if err != nil || sync == nil || peer == c.name {
		return envs, err
	}
	own, err := c.lists.get(ctx, c.api, c.name)
	if err != nil {
		return nil, err
	}
	more, err := c.encryptToDevices(ctx, []session.DeviceList{{Name: c.name, Devices: own}}, sync)
	return append(envs, more...), err
}

// encryptToDevices encrypts pt for the devices of lists, but this one,
// with session.Manager.EncryptToDevices, which starts sessions from the
// bundles that fetchBundle gets. What it reports as failed is handled
// device by device: a device the server no longer has (its bundle fetch
// says unknown_device) is skipped and its user's list refetched next
// time; a session with a key the user no longer trusts (the user
// approved a new one) is started again from a fresh bundle, which must
// carry the approved key; a changed identity key fails the whole send
// with an *IdentityChangedError, as any other failure does, so that a
// message never reaches some devices of a peer and silently not others.
// Called with keysMu held.
func (c *Client) encryptToDevices(ctx context.Context, lists []session.DeviceList, pt []byte) ([]envelope, error) {
	// Every device of a user has the user's identity key: a bundle with
	// another is refused (see pin). The key is the one already trusted
	// for the user, or else the first this fan-out sees: device ids come
	// in increasing order, so the lowest, normally the device that
	// registered the account, is trusted on first use.
	withOPK := map[store.Address]bool{}
	want := map[string]*keys.PublicKey{}
	for _, l := range lists {
		k, err := c.accountKey(ctx, l.Name)
		if err != nil {
			return nil, err
		}
		want[l.Name] = k
	}
	fetch := func(ctx context.Context, a store.Address) (session.Bundle, error) {
		xb, err := c.fetchBundle(ctx, a)
		if err != nil {
			return session.Bundle{}, err
		}
		switch k := want[a.Name]; {
		case k == nil:
			want[a.Name] = xb.IdentityKey
		case !k.Equal(xb.IdentityKey):
			return session.Bundle{}, errOtherKey
		}
		withOPK[a] = xb.OneTimePreKey != nil
		return session.Bundle{X3DH: xb}, nil
	}
	rep, err := c.mgr.EncryptToDevices(ctx, devAddr(c.name, c.device), lists, pt, fetch)
	if err != nil {
		return nil, err
	}
	var envs []envelope
	for _, m := range rep.Sent {
		if m.Started {
			c.emit(Event{Kind: EventSessionStarted, Peer: m.Address.Name, Device: m.Address.DeviceID, OneTimePreKey: withOPK[m.Address]})
		}
		envs = append(envs, envelope{m.Address, m.Message})
	}
	for _, f := range rep.Failed {
		a := f.Address
		ie, isIdentity := errors.AsType[*session.IdentityError](f.Err)
		switch {
		case isCode(f.Err, api.CodeUnknownDevice):
			c.lists.forget(a.Name)
		case errors.Is(f.Err, errOtherKey):
			c.emit(Event{Kind: EventDeviceRejected, Peer: a.Name, Device: a.DeviceID, Err: errOtherKey})
		case isIdentity:
			c.setPending(a, ie.Received)
			return nil, &IdentityChangedError{Peer: a.Name, Device: a.DeviceID, Safety: c.safetyWith(ctx, a.Name, ie.Received)}
		case errors.Is(f.Err, session.ErrUntrustedIdentity):
			if err := c.startSession(ctx, a); err != nil {
				return nil, err
			}
			body, err := c.mgr.Encrypt(ctx, a, pt)
			if err != nil {
				return nil, err
			}
			envs = append(envs, envelope{a, body})
		default:
			return nil, fmt.Errorf("client: encrypting for %s: %w", deviceName(a), f.Err)
		}
	}
	return envs, nil
}

// fetchBundle fetches and decodes the bundle of device a.
func (c *Client) fetchBundle(ctx context.Context, a store.Address) (*x3dh.Bundle, error) {
	b, err := c.api.bundle(ctx, a.Name, a.DeviceID)
	if err != nil {
		return nil, fmt.Errorf("client: fetching %s's keys: %w", deviceName(a), err)
	}
	xb, err := b.X3DH()
	if err != nil {
		return nil, fmt.Errorf("client: %s's bundle: %w", deviceName(a), err)
	}
	return xb, nil
}

// deviceName is how events and errors name one device of a user.
func deviceName(a store.Address) string {
	return a.Name + " (device " + strconv.FormatUint(uint64(a.DeviceID), 10) + ")"
}

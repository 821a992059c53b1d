package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ratchetkit/ratchetkit/examples/chat/api"
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

func (s *serverAPI) link(ctx context.Context) (*api.LinkResponse, error) {
	var l api.LinkResponse
	if err := s.do(ctx, "POST", "/v1/devices/link", nil, &l); err != nil {
		return nil, err
	}
	return &l, nil
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

// LinkCode asks the server for a code with which one new device can join
// this account, once, within ten minutes (api.LinkTTL): give it to the
// new device as Config.Link. Asking again voids the previous code. For
// as long as the code is good, this device asks for the account's device
// list before every message, so that the new device gets the next one.
func (c *Client) LinkCode(ctx context.Context) (string, error) {
	l, err := c.api.link(ctx)
	if err != nil {
		return "", fmt.Errorf("client: asking for a link code: %w", err)
	}
	c.lists.freshFor(c.name, api.LinkTTL*time.Second)
	return l.Code, nil
}

// Devices returns the device ids of user, as the server lists them.
func (c *Client) Devices(ctx context.Context, user string) ([]uint32, error) {
	return c.api.devices(ctx, user)
}

// join adds this directory to cfg.Name's account as a new device, with
// the link code cfg.Link. The keys were made for device 0, the id not
// being known before the server assigns it; the local identity is then
// saved under the assigned id.
func (c *Client) join(ctx context.Context) error {
	if !api.ValidName(c.cfg.Name) {
		return fmt.Errorf("client: %q is not a valid name", c.cfg.Name)
	}
	if c.cfg.Server == "" {
		return fmt.Errorf("client: no server to join %s's account on", c.cfg.Name)
	}
	c.name = c.cfg.Name
	c.api = &serverAPI{base: strings.TrimRight(c.cfg.Server, "/"), hc: c.cfg.HTTPClient}
	up, err := c.mgr.Upkeep(ctx)
	if err != nil {
		return err
	}
	resp, err := c.api.addDevice(ctx, &api.DeviceRequest{
		Name:           c.name,
		LinkCode:       c.cfg.Link,
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
	withOPK := map[store.Address]bool{}
	fetch := func(ctx context.Context, a store.Address) (session.Bundle, error) {
		xb, err := c.fetchBundle(ctx, a)
		if err != nil {
			return session.Bundle{}, err
		}
		withOPK[a] = xb.OneTimePreKey != nil
		return session.Bundle{X3DH: xb}, nil
	}
	rep, err := c.mgr.EncryptToDevices(ctx, c.name, lists, pt, fetch)
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

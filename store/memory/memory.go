// Package memory is a [store.Store] that keeps everything in process memory,
// for tests, examples and applications that persist nothing. It is safe for
// concurrent use.
//
// Update transactions run one at a time; each buffers its writes and applies
// them in one step when fn succeeds, so a failed or panicking fn leaves no
// trace. View transactions run concurrently with each other and with an
// Update's fn, and wait only while an Update applies its writes, which makes
// every View a consistent snapshot.
//
// Values go in and out as copies: a caller may wipe or reuse what it passed
// to Save, and what Load returned, without touching the stored bytes. When a
// record or key is replaced or removed, and when a transaction is rolled
// back, the store overwrites the bytes it owned with zeros. That is best
// effort: Go gives no control over copies the runtime may have made.
package memory

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/store"
)

var (
	errReadOnly = errors.New("memory: write in a read-only transaction")
	errDone     = errors.New("memory: transaction used after it ended")
	errNilKey   = errors.New("memory: nil key")
)

type privateKey = [keys.PrivateKeySize]byte
type publicKey = [keys.PublicKeySize]byte

type local struct {
	priv     privateKey
	deviceID uint32
}

type signed struct {
	priv    privateKey
	sig     [keys.SignatureSize]byte
	created int64 // Unix seconds
}

// data is the committed state. Pointer and slice values are owned by the
// store: they never escape to callers, so they can be wiped when dropped.
type data struct {
	local      *local
	identities map[store.Address]*publicKey
	prekeys    map[uint32]*privateKey
	lastPreKey uint32
	signed     map[uint32]*signed
	sessions   map[string]map[uint32][]byte // name → device → record
	kyber      map[uint32]kyberKey
	lastKyber  uint32
	kyberUsed  map[kyberTriple]struct{}
	senderKeys map[senderKeyID][]byte
}

// Store is an in-memory [store.Store]. Use [New]; the zero value is not
// usable.
type Store struct {
	// writer is a one-slot semaphore held by the running Update, so that
	// waiting for it can end with the caller's context.
	writer chan struct{}
	// mu guards d against the apply step of a commit: Views hold it shared
	// while they read, a commit holds it exclusively while it writes. An
	// Update's fn reads d without it, which is safe because only the holder
	// of writer ever changes d.
	mu sync.RWMutex
	d  data
	// spare holds the emptied pending maps of the last Update, for the
	// next one: only one Update runs at a time, and reusing them saves
	// allocating maps on every transaction.
	spare pending
}

var _ store.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{
		writer: make(chan struct{}, 1),
		d: data{
			identities: make(map[store.Address]*publicKey),
			prekeys:    make(map[uint32]*privateKey),
			signed:     make(map[uint32]*signed),
			sessions:   make(map[string]map[uint32][]byte),
			kyber:      make(map[uint32]kyberKey),
			kyberUsed:  make(map[kyberTriple]struct{}),
			senderKeys: make(map[senderKeyID][]byte),
		},
	}
}

// Update implements [store.Store.Update].
func (s *Store) Update(ctx context.Context, fn func(tx store.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case s.writer <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.writer }()

	t := &tx{s: s, write: true, lastPreKey: s.d.lastPreKey, lastKyber: s.d.lastKyber, pending: s.spare}
	committed := false
	// Deferred so that a panicking fn also drops its writes (and releases
	// the semaphore, deferred above) before the panic goes on.
	defer func() {
		if !committed {
			t.rollback()
		}
		t.done = true
		clear(t.identities)
		clear(t.prekeys)
		clear(t.signed)
		clear(t.sessions)
		clear(t.kyber)
		clear(t.kyberUsed)
		clear(t.senderKeys)
		s.spare = t.pending
	}()
	if err := fn(t); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	t.commit()
	committed = true
	return nil
}

// View implements [store.Store.View].
func (s *Store) View(ctx context.Context, fn func(tx store.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	t := &tx{s: s, lastPreKey: s.d.lastPreKey, lastKyber: s.d.lastKyber}
	defer func() { t.done = true }()
	return fn(t)
}

// entry is a transaction's pending change to one key: a new value, or a
// deletion when ok is false.
type entry[V any] struct {
	v  V
	ok bool
}

// tx reads through its own pending writes to the committed data.
type tx struct {
	s     *Store
	write bool
	done  bool

	localSet   bool
	local      *local
	lastPreKey uint32
	lastKyber  uint32
	pending
}

// pending holds a transaction's changes by key. A finished transaction's
// maps go to the next one, so a Tx leaked past its end must never reach
// them: every method checks done first.
type pending struct {
	identities map[store.Address]entry[*publicKey]
	prekeys    map[uint32]entry[*privateKey]
	signed     map[uint32]entry[*signed]
	sessions   map[store.Address]entry[[]byte]
	kyber      map[uint32]entry[kyberKey]
	kyberUsed  map[kyberTriple]entry[struct{}]
	senderKeys map[senderKeyID]entry[[]byte]
}

func (t *tx) Local() store.Local                 { return (*localTx)(t) }
func (t *tx) Identities() store.Identities       { return (*identitiesTx)(t) }
func (t *tx) PreKeys() store.PreKeys             { return (*preKeysTx)(t) }
func (t *tx) SignedPreKeys() store.SignedPreKeys { return (*signedPreKeysTx)(t) }
func (t *tx) Sessions() store.Sessions           { return (*sessionsTx)(t) }

// check reports why the transaction cannot be used now, if it cannot.
func (t *tx) check(ctx context.Context, write bool) error {
	if t.done {
		return errDone
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if write && !t.write {
		return errReadOnly
	}
	return nil
}

// lookup returns the value of k as transaction t sees it.
func lookup[K comparable, V any](pending map[K]entry[V], committed map[K]V, k K) (V, bool) {
	if e, ok := pending[k]; ok {
		return e.v, e.ok
	}
	v, ok := committed[k]
	return v, ok
}

// set records a pending change, allocating the pending map on first use.
func set[K comparable, V any](pending *map[K]entry[V], k K, e entry[V]) {
	if *pending == nil {
		*pending = make(map[K]entry[V])
	}
	(*pending)[k] = e
}

// commit applies the pending writes, wiping what they replace.
func (t *tx) commit() {
	s := t.s
	s.mu.Lock()
	defer s.mu.Unlock()
	d := &s.d
	if t.localSet {
		if d.local != nil {
			clear(d.local.priv[:])
		}
		d.local = t.local
	}
	for k, e := range t.identities {
		if e.ok {
			d.identities[k] = e.v
		} else {
			delete(d.identities, k)
		}
	}
	for k, e := range t.prekeys {
		if old := d.prekeys[k]; old != nil {
			clear(old[:])
		}
		if e.ok {
			d.prekeys[k] = e.v
		} else {
			delete(d.prekeys, k)
		}
	}
	d.lastPreKey = t.lastPreKey
	for k, e := range t.signed {
		if old := d.signed[k]; old != nil {
			clear(old.priv[:])
		}
		if e.ok {
			d.signed[k] = e.v
		} else {
			delete(d.signed, k)
		}
	}
	t.commitKyber()
	t.commitSenderKeys()
	for a, e := range t.sessions {
		devices := d.sessions[a.Name]
		clear(devices[a.DeviceID])
		switch {
		case e.ok && devices == nil:
			d.sessions[a.Name] = map[uint32][]byte{a.DeviceID: e.v}
		case e.ok:
			devices[a.DeviceID] = e.v
		default:
			delete(devices, a.DeviceID)
			if len(devices) == 0 {
				delete(d.sessions, a.Name)
			}
		}
	}
}

// rollback wipes the copies the pending writes hold.
func (t *tx) rollback() {
	if t.local != nil {
		clear(t.local.priv[:])
	}
	for _, e := range t.prekeys {
		if e.v != nil {
			clear(e.v[:])
		}
	}
	for _, e := range t.signed {
		if e.v != nil {
			clear(e.v.priv[:])
		}
	}
	for _, e := range t.sessions {
		clear(e.v)
	}
	t.rollbackKyber()
	t.rollbackSenderKeys()
}

// checkBatch checks a whole batch of prekeys before Add changes anything,
// so that a failed Add has no effect even if the caller goes on to
// commit: it refuses a nil prekey (or one for which key reports false), a
// repeated id and a stored one.
func checkBatch[P comparable](pks []P, key func(P) (id uint32, ok bool), stored func(uint32) bool) error {
	var zero P
	seen := make(map[uint32]struct{}, len(pks))
	for _, pk := range pks {
		if pk == zero {
			return errNilKey
		}
		id, ok := key(pk)
		if !ok {
			return errNilKey
		}
		if _, dup := seen[id]; dup || stored(id) {
			return store.ErrExists
		}
		seen[id] = struct{}{}
	}
	return nil
}

// The methods below implement the store interfaces, whose documentation
// states their contracts. Each checks the transaction first, reads through
// lookup, and records writes with set; the committed data changes only in
// commit.

type localTx tx

func (t *localTx) Load(ctx context.Context) (*store.LocalIdentity, error) {
	if err := (*tx)(t).check(ctx, false); err != nil {
		return nil, err
	}
	l := t.s.d.local
	if t.localSet {
		l = t.local
	}
	if l == nil {
		return nil, store.ErrNotFound
	}
	kp, err := keys.NewIdentityKeyPair(l.priv[:])
	if err != nil {
		return nil, err
	}
	return &store.LocalIdentity{KeyPair: kp, DeviceID: l.deviceID}, nil
}

func (t *localTx) Save(ctx context.Context, id *store.LocalIdentity) error {
	if err := (*tx)(t).check(ctx, true); err != nil {
		return err
	}
	if id == nil || id.KeyPair == nil || id.KeyPair.PrivateKey() == nil {
		return errNilKey
	}
	if t.local != nil {
		clear(t.local.priv[:])
	}
	t.local = &local{deviceID: id.DeviceID}
	copy(t.local.priv[:], id.KeyPair.PrivateKey().Bytes())
	t.localSet = true
	return nil
}

type identitiesTx tx

func (t *identitiesTx) Load(ctx context.Context, addr store.Address) (*keys.PublicKey, error) {
	if err := (*tx)(t).check(ctx, false); err != nil {
		return nil, err
	}
	u, ok := lookup(t.identities, t.s.d.identities, addr)
	if !ok {
		return nil, store.ErrNotFound
	}
	return keys.NewPublicKey(u[:])
}

func (t *identitiesTx) Save(ctx context.Context, addr store.Address, key *keys.PublicKey) (bool, error) {
	if err := (*tx)(t).check(ctx, true); err != nil {
		return false, err
	}
	if key == nil {
		return false, errNilKey
	}
	var u [32]byte
	copy(u[:], key.Bytes())
	old, ok := lookup(t.identities, t.s.d.identities, addr)
	set(&t.identities, addr, entry[*publicKey]{v: &u, ok: true})
	return ok && *old != u, nil
}

type preKeysTx tx

func (t *preKeysTx) Load(ctx context.Context, id uint32) (*keys.OneTimePreKey, error) {
	if err := (*tx)(t).check(ctx, false); err != nil {
		return nil, err
	}
	k, ok := lookup(t.prekeys, t.s.d.prekeys, id)
	if !ok {
		return nil, store.ErrNotFound
	}
	priv, err := keys.NewPrivateKey(k[:])
	if err != nil {
		return nil, err
	}
	return keys.NewOneTimePreKey(id, priv), nil
}

func (t *preKeysTx) Add(ctx context.Context, pks []*keys.OneTimePreKey) error {
	if err := (*tx)(t).check(ctx, true); err != nil {
		return err
	}
	err := checkBatch(pks, func(pk *keys.OneTimePreKey) (uint32, bool) { return pk.ID(), pk.PrivateKey() != nil },
		func(id uint32) bool { _, ok := lookup(t.prekeys, t.s.d.prekeys, id); return ok })
	if err != nil {
		return err
	}
	for _, pk := range pks {
		var k [32]byte
		copy(k[:], pk.PrivateKey().Bytes())
		set(&t.prekeys, pk.ID(), entry[*privateKey]{v: &k, ok: true})
		t.lastPreKey = max(t.lastPreKey, pk.ID())
	}
	return nil
}

func (t *preKeysTx) Remove(ctx context.Context, id uint32) error {
	if err := (*tx)(t).check(ctx, true); err != nil {
		return err
	}
	k, ok := lookup(t.prekeys, t.s.d.prekeys, id)
	if !ok {
		return store.ErrNotFound
	}
	if e, pending := t.prekeys[id]; pending && e.v == k {
		// Added and removed in this transaction: the copy is ours alone.
		// A committed key is wiped by commit, not here, because a View
		// may be reading it.
		clear(k[:])
	}
	set(&t.prekeys, id, entry[*privateKey]{})
	return nil
}

func (t *preKeysTx) Count(ctx context.Context) (int, error) {
	if err := (*tx)(t).check(ctx, false); err != nil {
		return 0, err
	}
	// The committed count, corrected by the pending changes, without
	// walking the committed map.
	n := len(t.s.d.prekeys)
	for id, e := range t.prekeys {
		_, committed := t.s.d.prekeys[id]
		switch {
		case e.ok && !committed:
			n++
		case !e.ok && committed:
			n--
		}
	}
	return n, nil
}

func (t *preKeysTx) LastID(ctx context.Context) (uint32, error) {
	if err := (*tx)(t).check(ctx, false); err != nil {
		return 0, err
	}
	return t.lastPreKey, nil
}

type signedPreKeysTx tx

func (t *signedPreKeysTx) Load(ctx context.Context, id uint32) (*keys.SignedPreKey, error) {
	if err := (*tx)(t).check(ctx, false); err != nil {
		return nil, err
	}
	s, ok := lookup(t.signed, t.s.d.signed, id)
	if !ok {
		return nil, store.ErrNotFound
	}
	priv, err := keys.NewPrivateKey(s.priv[:])
	if err != nil {
		return nil, err
	}
	return keys.NewSignedPreKey(id, priv, s.sig[:], time.Unix(s.created, 0))
}

func (t *signedPreKeysTx) Add(ctx context.Context, spk *keys.SignedPreKey) error {
	if err := (*tx)(t).check(ctx, true); err != nil {
		return err
	}
	if spk == nil || spk.PrivateKey() == nil {
		return errNilKey
	}
	if _, ok := lookup(t.signed, t.s.d.signed, spk.ID()); ok {
		return store.ErrExists
	}
	s := &signed{created: spk.Created().Unix()}
	copy(s.priv[:], spk.PrivateKey().Bytes())
	copy(s.sig[:], spk.Signature())
	set(&t.signed, spk.ID(), entry[*signed]{v: s, ok: true})
	return nil
}

func (t *signedPreKeysTx) List(ctx context.Context) ([]store.SignedPreKeyInfo, error) {
	if err := (*tx)(t).check(ctx, false); err != nil {
		return nil, err
	}
	// Committed prekeys not touched by this transaction, then its own.
	var out []store.SignedPreKeyInfo
	for id, s := range t.s.d.signed {
		if _, pending := t.signed[id]; !pending {
			out = append(out, store.SignedPreKeyInfo{ID: id, Created: time.Unix(s.created, 0)})
		}
	}
	for id, e := range t.signed {
		if e.ok {
			out = append(out, store.SignedPreKeyInfo{ID: id, Created: time.Unix(e.v.created, 0)})
		}
	}
	slices.SortFunc(out, func(a, b store.SignedPreKeyInfo) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out, nil
}

func (t *signedPreKeysTx) Remove(ctx context.Context, id uint32) error {
	if err := (*tx)(t).check(ctx, true); err != nil {
		return err
	}
	s, ok := lookup(t.signed, t.s.d.signed, id)
	if !ok {
		return store.ErrNotFound
	}
	if e, pending := t.signed[id]; pending && e.v == s {
		clear(s.priv[:])
	}
	set(&t.signed, id, entry[*signed]{})
	(*tx)(t).forgetTriples(func(k kyberTriple) bool { return k.signed == id })
	return nil
}

type sessionsTx tx

func (t *sessionsTx) get(addr store.Address) ([]byte, bool) {
	if e, ok := t.sessions[addr]; ok {
		return e.v, e.ok
	}
	rec, ok := t.s.d.sessions[addr.Name][addr.DeviceID]
	return rec, ok
}

func (t *sessionsTx) Load(ctx context.Context, addr store.Address) ([]byte, error) {
	if err := (*tx)(t).check(ctx, false); err != nil {
		return nil, err
	}
	rec, ok := t.get(addr)
	if !ok {
		return nil, store.ErrNotFound
	}
	return append(make([]byte, 0, len(rec)), rec...), nil
}

func (t *sessionsTx) Save(ctx context.Context, addr store.Address, record []byte) error {
	if err := (*tx)(t).check(ctx, true); err != nil {
		return err
	}
	if e, pending := t.sessions[addr]; pending {
		clear(e.v)
	}
	set(&t.sessions, addr, entry[[]byte]{v: append(make([]byte, 0, len(record)), record...), ok: true})
	return nil
}

func (t *sessionsTx) Delete(ctx context.Context, addr store.Address) error {
	if err := (*tx)(t).check(ctx, true); err != nil {
		return err
	}
	if _, ok := t.get(addr); !ok {
		return store.ErrNotFound
	}
	if e, pending := t.sessions[addr]; pending {
		clear(e.v)
	}
	set(&t.sessions, addr, entry[[]byte]{})
	return nil
}

func (t *sessionsTx) Devices(ctx context.Context, name string) ([]uint32, error) {
	if err := (*tx)(t).check(ctx, false); err != nil {
		return nil, err
	}
	var out []uint32
	for dev := range t.s.d.sessions[name] {
		if _, pending := t.sessions[store.Address{Name: name, DeviceID: dev}]; !pending {
			out = append(out, dev)
		}
	}
	for a, e := range t.sessions {
		if e.ok && a.Name == name {
			out = append(out, a.DeviceID)
		}
	}
	slices.Sort(out)
	return out, nil
}

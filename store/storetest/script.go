package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/store"
)

// RunScript interprets script as a sequence of transactions, runs each on
// s and on a reference store that is correct by construction (every
// Update works on a full copy of the data), and fails t at the first
// result that differs, then compares everything both stores hold. Any
// bytes are a valid script, so RunScript suits a fuzz target:
//
//	func FuzzStore(f *testing.F) {
//		f.Add([]byte{0x10, 0x0e, 0x01, 0x02})
//		f.Fuzz(func(t *testing.T, script []byte) {
//			storetest.RunScript(t, newEmptyStore(t), script)
//		})
//	}
//
// s must be empty. Scripts touch four addresses (two names, one of them
// empty, with a NUL-byte twin), prekey ids 0 to 7 and four key pairs; on a
// store whose transactions implement store.KyberTx also Kyber prekey ids
// 0 to 7 of four Kyber key pairs, signed prekey ids 0 to 3 and four base
// keys in the used triples (see kyberOp). At the end it compares the
// Kyber prekeys both stores hold and the triples they recorded.
func RunScript(t testing.TB, s store.Store, script []byte) {
	t.Helper()
	ref := newRefStore()
	ref.noKyber = !hasKyber(t, s)
	r := &scriptReader{b: script}
	for n := 0; r.more(); n++ {
		kind, ops := r.byte()%3, int(r.byte()%8)
		var prog []scriptOp
		for range ops {
			prog = append(prog, r.op())
		}
		got, gotErr := runScriptTx(s, kind, prog)
		want, wantErr := runScriptTx(ref, kind, prog)
		if !slices.Equal(got, want) || gotErr != wantErr {
			t.Fatalf("transaction %d (%s):\n\tstore:     %v -> %s\n\treference: %v -> %s",
				n, txKinds[kind], got, gotErr, want, wantErr)
		}
		if g, w := dump(t, s), dump(t, ref); g != w {
			t.Fatalf("after transaction %d (%s), the store holds\n%s\nthe reference holds\n%s", n, txKinds[kind], g, w)
		}
	}
	if g, w := dumpKyber(t, s), dumpKyber(t, ref); g != w {
		t.Fatalf("at the end, the store's Kyber prekeys and used triples are\n%s\nthe reference's are\n%s", g, w)
	}
}

// hasKyber reports whether s's transactions implement store.KyberTx.
func hasKyber(t testing.TB, s store.Store) bool {
	var ok bool
	if err := s.View(context.Background(), func(tx store.Tx) error { _, ok = tx.(store.KyberTx); return nil }); err != nil {
		t.Fatalf("View: %v", err)
	}
	return ok
}

var txKinds = [3]string{"Update that commits", "Update that fails", "View"}

var errScript = errors.New("storetest: script transaction fails")

// runScriptTx runs one transaction of a script's operations (of any
// area's script) and returns each operation's result and the class of the
// transaction's error: kind 1 fails the transaction after its operations,
// kind 2 runs them in a View, any other kind in an Update.
func runScriptTx[Op interface {
	run(context.Context, store.Tx) string
}](s store.Store, kind byte, prog []Op) ([]string, string) {
	ctx := context.Background()
	var out []string
	fn := func(tx store.Tx) error {
		out = out[:0]
		for _, op := range prog {
			out = append(out, op.run(ctx, tx))
		}
		if kind == 1 {
			return errScript
		}
		return nil
	}
	var err error
	if kind == 2 {
		err = s.View(ctx, fn)
	} else {
		err = s.Update(ctx, fn)
	}
	return out, errClass(err)
}

func errClass(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, store.ErrNotFound):
		return "not found"
	case errors.Is(err, store.ErrExists):
		return "exists"
	case errors.Is(err, store.ErrReusedBaseKey):
		return "reused base key"
	case errors.Is(err, errScript):
		return "fn failed"
	}
	return "error"
}

var (
	scriptAddrs = []store.Address{
		{Name: "a", DeviceID: 1}, {Name: "a", DeviceID: 0}, {Name: "a\x00", DeviceID: 1}, {Name: "", DeviceID: 4294967295},
	}
	scriptNames = []string{"a", "a\x00", "", "b"}

	scriptKeysOnce sync.Once
	scriptKeys     []*keys.IdentityKeyPair
)

// scriptKey returns one of four fixed key pairs, derived from their index.
func scriptKey(i byte) *keys.IdentityKeyPair {
	scriptKeysOnce.Do(func() {
		for j := range 4 {
			seed := sha256.Sum256([]byte{'k', byte(j)})
			k, err := keys.NewIdentityKeyPair(seed[:])
			if err != nil {
				panic(err)
			}
			scriptKeys = append(scriptKeys, k)
		}
	})
	return scriptKeys[i%4]
}

// keyName names a key by its index among the script keys, so that results
// compare without printing key bytes.
func keyName(raw []byte) string {
	for i := range 4 {
		if string(scriptKey(byte(i)).PrivateKey().Bytes()) == string(raw) {
			return fmt.Sprintf("key%d", i)
		}
	}
	return "unknown key"
}

func pubName(k *keys.PublicKey) string {
	for i := range 4 {
		if scriptKey(byte(i)).PublicKey().Equal(k) {
			return fmt.Sprintf("key%d", i)
		}
	}
	return "unknown key"
}

type scriptReader struct{ b []byte }

func (r *scriptReader) more() bool { return len(r.b) > 0 }

// byte returns the next byte of the script, or 0 past its end.
func (r *scriptReader) byte() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

type scriptOp struct {
	code       byte
	a, b, c, d byte
	rec        []byte
}

func (r *scriptReader) op() scriptOp {
	op := scriptOp{code: r.byte() % 18, a: r.byte(), b: r.byte(), c: r.byte(), d: r.byte()}
	if op.code == 14 {
		for range op.b % 6 {
			op.rec = append(op.rec, r.byte())
		}
	}
	return op
}

// result describes a value with show, or its error's class.
func result[T any](v T, err error) func(show func(T) string) string {
	return func(show func(T) string) string {
		if err != nil {
			return errClass(err)
		}
		return show(v)
	}
}

// run performs the operation and describes its result. Operations 1, 8, 9
// and 12 read four operand bytes that their own results never depended on;
// those bytes now name a Kyber operation (kyberOp) that runs after them.
// That is how the Kyber area joined the scripts without changing what any
// byte of an older script does to the other areas: appending opcodes to
// the "% 18" above would have renumbered the byte values 18 to 255, and
// with them every entry of the committed corpus.
func (op scriptOp) run(ctx context.Context, tx store.Tx) string {
	out := op.runBase(ctx, tx)
	switch op.code {
	case 1, 8, 9, 12:
		out += " | " + op.kyberOp(ctx, tx)
	}
	return out
}

// runBase performs the operation on the areas every store has.
func (op scriptOp) runBase(ctx context.Context, tx store.Tx) string {
	addr := scriptAddrs[op.a%4]
	id := uint32(op.c % 8)
	switch op.code {
	case 0:
		return errClass(tx.Local().Save(ctx, &store.LocalIdentity{KeyPair: scriptKey(op.b), DeviceID: uint32(op.c)}))
	case 1:
		return result(tx.Local().Load(ctx))(func(l *store.LocalIdentity) string {
			return fmt.Sprintf("%s device %d", keyName(l.KeyPair.PrivateKey().Bytes()), l.DeviceID)
		})
	case 2:
		return result(tx.Identities().Save(ctx, addr, scriptKey(op.b).PublicKey()))(func(c bool) string {
			return fmt.Sprintf("changed %v", c)
		})
	case 3:
		return result(tx.Identities().Load(ctx, addr))(pubName)
	case 4:
		// A second key choice, so that changes are as common as repeats.
		return result(tx.Identities().Save(ctx, addr, scriptKey(op.c).PublicKey()))(func(c bool) string {
			return fmt.Sprintf("changed %v", c)
		})
	case 5:
		var pks []*keys.OneTimePreKey
		for _, x := range []byte{op.c, op.d, op.b}[:1+op.b%3] {
			pks = append(pks, keys.NewOneTimePreKey(uint32(x%8), scriptKey(x/8).PrivateKey()))
		}
		return errClass(tx.PreKeys().Add(ctx, pks))
	case 6:
		return result(tx.PreKeys().Load(ctx, id))(func(k *keys.OneTimePreKey) string {
			return fmt.Sprintf("prekey %d %s", k.ID(), keyName(k.PrivateKey().Bytes()))
		})
	case 7:
		return errClass(tx.PreKeys().Remove(ctx, id))
	case 8:
		return result(tx.PreKeys().Count(ctx))(func(n int) string { return fmt.Sprint(n) })
	case 9:
		return result(tx.PreKeys().LastID(ctx))(func(n uint32) string { return fmt.Sprint(n) })
	case 10:
		ik := scriptKey(op.b)
		sig := sha256.Sum256([]byte{'s', op.c})
		spk, err := keys.NewSignedPreKey(id, ik.PrivateKey(), append(sig[:], sig[:]...), time.Unix(int64(op.d)*3600, 0))
		if err != nil {
			panic(err)
		}
		return errClass(tx.SignedPreKeys().Add(ctx, spk))
	case 11:
		return result(tx.SignedPreKeys().Load(ctx, id))(func(k *keys.SignedPreKey) string {
			return fmt.Sprintf("signed prekey %d %s sig %x created %d", k.ID(), keyName(k.PrivateKey().Bytes()), k.Signature()[:4], k.Created().Unix())
		})
	case 12:
		return result(tx.SignedPreKeys().List(ctx))(func(l []store.SignedPreKeyInfo) string {
			var b strings.Builder
			for _, i := range l {
				fmt.Fprintf(&b, "%d@%d ", i.ID, i.Created.Unix())
			}
			return b.String()
		})
	case 13:
		return errClass(tx.SignedPreKeys().Remove(ctx, id))
	case 14:
		return errClass(tx.Sessions().Save(ctx, addr, op.rec))
	case 15:
		return result(tx.Sessions().Load(ctx, addr))(func(r []byte) string { return "record " + hex.EncodeToString(r) })
	case 16:
		return errClass(tx.Sessions().Delete(ctx, addr))
	default:
		return result(tx.Sessions().Devices(ctx, scriptNames[op.a%4]))(func(d []uint32) string { return fmt.Sprint(d) })
	}
}

// dump describes everything a script can have stored, but the Kyber
// prekeys' blobs and the used triples (dumpKyber): their List is enough
// after each transaction, and loading the blobs there (each one an ML-KEM
// key expansion) made the fuzz target ten times slower.
func dump(t testing.TB, s store.Store) string {
	t.Helper()
	var b strings.Builder
	err := s.View(context.Background(), func(tx store.Tx) error {
		ctx := context.Background()
		for _, op := range []scriptOp{{code: 1}, {code: 8}, {code: 9}, {code: 12}} {
			fmt.Fprintln(&b, op.runBase(ctx, tx))
		}
		for i := range byte(8) {
			fmt.Fprintln(&b, scriptOp{code: 6, c: i}.runBase(ctx, tx), "|",
				scriptOp{code: 11, c: i}.runBase(ctx, tx))
		}
		for i := range byte(4) {
			fmt.Fprintln(&b, scriptOp{code: 3, a: i}.runBase(ctx, tx), "|",
				scriptOp{code: 15, a: i}.runBase(ctx, tx), "|",
				scriptOp{code: 17, a: i}.runBase(ctx, tx))
		}
		for _, a := range []byte{3, 4, 5} {
			fmt.Fprintln(&b, scriptOp{a: a}.kyberOp(ctx, tx))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("View for the dump: %v", err)
	}
	return b.String()
}

// refStore is the reference: an Update copies all the data, fn changes the
// copy, and a commit replaces the data with it. It is slow and obviously
// right, which is what a reference is for.
type refStore struct {
	mu sync.Mutex
	d  *refData
	// noKyber hides the Kyber area, to compare with a store that lacks it.
	noKyber bool
}

type refData struct {
	local      *store.LocalIdentity // key bytes kept in raw
	localRaw   []byte
	identities map[store.Address]string // public key bytes
	prekeys    map[uint32][]byte        // private key bytes
	lastPreKey uint32
	signed     map[uint32]refSigned
	sessions   map[store.Address][]byte
	kyber      map[uint32]refKyber
	lastKyber  uint32
	kyberUsed  map[refTriple]bool
}

type refKyber struct {
	blob             []byte
	lastResort, used bool
	created          int64
}

type refTriple struct {
	kyber, signed uint32
	base          string
}

type refSigned struct {
	raw, sig []byte
	created  int64
}

func newRefStore() *refStore {
	return &refStore{d: &refData{
		identities: map[store.Address]string{},
		prekeys:    map[uint32][]byte{},
		signed:     map[uint32]refSigned{},
		sessions:   map[store.Address][]byte{},
		kyber:      map[uint32]refKyber{},
		kyberUsed:  map[refTriple]bool{},
	}}
}

func (d *refData) clone() *refData {
	c := *d
	c.identities = maps.Clone(d.identities)
	c.prekeys = maps.Clone(d.prekeys)
	c.signed = maps.Clone(d.signed)
	c.sessions = maps.Clone(d.sessions)
	c.kyber = maps.Clone(d.kyber)
	c.kyberUsed = maps.Clone(d.kyberUsed)
	return &c
}

func (s *refStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := &refTx{d: s.d.clone(), write: true}
	defer func() { t.done = true }()
	if err := fn(s.wrap(t)); err != nil {
		return err
	}
	s.d = t.d
	return nil
}

func (s *refStore) View(ctx context.Context, fn func(store.Tx) error) error {
	s.mu.Lock()
	d := s.d
	s.mu.Unlock()
	t := &refTx{d: d}
	defer func() { t.done = true }()
	return fn(s.wrap(t))
}

// plainTx hides every method of a Tx but those store.Tx requires.
type plainTx struct{ store.Tx }

func (s *refStore) wrap(t *refTx) store.Tx {
	if s.noKyber {
		return plainTx{t}
	}
	return t
}

type refTx struct {
	d     *refData
	write bool
	done  bool
}

var errRefWrite = errors.New("storetest: reference: not writable")

func (t *refTx) writable() error {
	if !t.write || t.done {
		return errRefWrite
	}
	return nil
}

func (t *refTx) Local() store.Local                 { return (*refLocal)(t) }
func (t *refTx) Identities() store.Identities       { return (*refIdentities)(t) }
func (t *refTx) PreKeys() store.PreKeys             { return (*refPreKeys)(t) }
func (t *refTx) SignedPreKeys() store.SignedPreKeys { return (*refSignedPreKeys)(t) }
func (t *refTx) Sessions() store.Sessions           { return (*refSessions)(t) }

type refLocal refTx

func (t *refLocal) Load(context.Context) (*store.LocalIdentity, error) {
	if t.d.local == nil {
		return nil, store.ErrNotFound
	}
	kp, err := keys.NewIdentityKeyPair(t.d.localRaw)
	return &store.LocalIdentity{KeyPair: kp, DeviceID: t.d.local.DeviceID}, err
}

func (t *refLocal) Save(_ context.Context, id *store.LocalIdentity) error {
	if err := (*refTx)(t).writable(); err != nil {
		return err
	}
	t.d.local = &store.LocalIdentity{DeviceID: id.DeviceID}
	t.d.localRaw = id.KeyPair.PrivateKey().Bytes()
	return nil
}

type refIdentities refTx

func (t *refIdentities) Load(_ context.Context, a store.Address) (*keys.PublicKey, error) {
	u, ok := t.d.identities[a]
	if !ok {
		return nil, store.ErrNotFound
	}
	return keys.NewPublicKey([]byte(u))
}

func (t *refIdentities) Save(_ context.Context, a store.Address, k *keys.PublicKey) (bool, error) {
	if err := (*refTx)(t).writable(); err != nil {
		return false, err
	}
	old, ok := t.d.identities[a]
	t.d.identities[a] = string(k.Bytes())
	return ok && old != string(k.Bytes()), nil
}

type refPreKeys refTx

func (t *refPreKeys) Load(_ context.Context, id uint32) (*keys.OneTimePreKey, error) {
	raw, ok := t.d.prekeys[id]
	if !ok {
		return nil, store.ErrNotFound
	}
	k, err := keys.NewPrivateKey(raw)
	if err != nil {
		return nil, err
	}
	return keys.NewOneTimePreKey(id, k), nil
}

func (t *refPreKeys) Add(_ context.Context, pks []*keys.OneTimePreKey) error {
	if err := (*refTx)(t).writable(); err != nil {
		return err
	}
	return refAdd(&t.d.prekeys, &t.d.lastPreKey, pks, func(pk *keys.OneTimePreKey) (uint32, []byte) {
		return pk.ID(), pk.PrivateKey().Bytes()
	})
}

// refAdd adds the prekeys pks, kept as entry makes them, to *m and raises
// *last to their highest id; if an id is in *m or repeats, it changes
// neither and returns ErrExists.
func refAdd[P, V any](m *map[uint32]V, last *uint32, pks []P, entry func(P) (uint32, V)) error {
	next, l := maps.Clone(*m), *last
	for _, pk := range pks {
		id, v := entry(pk)
		if _, ok := next[id]; ok {
			return store.ErrExists
		}
		next[id] = v
		l = max(l, id)
	}
	*m, *last = next, l
	return nil
}

func (t *refPreKeys) Remove(_ context.Context, id uint32) error {
	if err := (*refTx)(t).writable(); err != nil {
		return err
	}
	if _, ok := t.d.prekeys[id]; !ok {
		return store.ErrNotFound
	}
	delete(t.d.prekeys, id)
	return nil
}

func (t *refPreKeys) Count(context.Context) (int, error) { return len(t.d.prekeys), nil }

func (t *refPreKeys) LastID(context.Context) (uint32, error) { return t.d.lastPreKey, nil }

type refSignedPreKeys refTx

func (t *refSignedPreKeys) Load(_ context.Context, id uint32) (*keys.SignedPreKey, error) {
	s, ok := t.d.signed[id]
	if !ok {
		return nil, store.ErrNotFound
	}
	k, err := keys.NewPrivateKey(s.raw)
	if err != nil {
		return nil, err
	}
	return keys.NewSignedPreKey(id, k, s.sig, time.Unix(s.created, 0))
}

func (t *refSignedPreKeys) Add(_ context.Context, spk *keys.SignedPreKey) error {
	if err := (*refTx)(t).writable(); err != nil {
		return err
	}
	if _, ok := t.d.signed[spk.ID()]; ok {
		return store.ErrExists
	}
	t.d.signed[spk.ID()] = refSigned{spk.PrivateKey().Bytes(), spk.Signature(), spk.Created().Unix()}
	return nil
}

func (t *refSignedPreKeys) List(context.Context) ([]store.SignedPreKeyInfo, error) {
	var out []store.SignedPreKeyInfo
	for _, id := range slices.Sorted(maps.Keys(t.d.signed)) {
		out = append(out, store.SignedPreKeyInfo{ID: id, Created: time.Unix(t.d.signed[id].created, 0)})
	}
	slices.SortStableFunc(out, func(a, b store.SignedPreKeyInfo) int { return a.Created.Compare(b.Created) })
	return out, nil
}

func (t *refSignedPreKeys) Remove(_ context.Context, id uint32) error {
	if err := (*refTx)(t).writable(); err != nil {
		return err
	}
	if _, ok := t.d.signed[id]; !ok {
		return store.ErrNotFound
	}
	delete(t.d.signed, id)
	t.d.forgetTriples(func(k refTriple) bool { return k.signed == id })
	return nil
}

type refSessions refTx

func (t *refSessions) Load(_ context.Context, a store.Address) ([]byte, error) {
	r, ok := t.d.sessions[a]
	if !ok {
		return nil, store.ErrNotFound
	}
	return slices.Clone(r), nil
}

func (t *refSessions) Save(_ context.Context, a store.Address, r []byte) error {
	if err := (*refTx)(t).writable(); err != nil {
		return err
	}
	t.d.sessions[a] = append([]byte{}, r...)
	return nil
}

func (t *refSessions) Delete(_ context.Context, a store.Address) error {
	if err := (*refTx)(t).writable(); err != nil {
		return err
	}
	if _, ok := t.d.sessions[a]; !ok {
		return store.ErrNotFound
	}
	delete(t.d.sessions, a)
	return nil
}

func (t *refSessions) Devices(_ context.Context, name string) ([]uint32, error) {
	var out []uint32
	for a := range t.d.sessions {
		if a.Name == name {
			out = append(out, a.DeviceID)
		}
	}
	slices.Sort(out)
	return out, nil
}

package storetest

import (
	"context"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ratchetkit/ratchetkit/senderkey"
	"github.com/ratchetkit/ratchetkit/store"
)

// RunSenderKeyScript is RunScript for the sender-key area: it interprets
// script as a sequence of transactions of sender-key and session
// operations, runs each on s and on a reference store that is correct by
// construction, fails t at the first result that differs, and compares
// everything both stores hold after every transaction. Any bytes are a
// valid script. s must be empty, and its transactions must implement
// store.SenderKeyTx.
//
// Each transaction is two bytes, its kind (byte%3: an Update that
// commits, one whose fn fails, a View) and its operation count (byte%8),
// then the operations, each a code and three operand bytes a, b, c:
//
//	0 SenderKeys Save of a record of c%6 bytes read from the script
//	1 SenderKeys Load       2 SenderKeys Delete
//	3 SenderKeys Save of c%6 bytes, the caller's copy then overwritten,
//	  then Load (a store that kept the caller's slice shows it)
//	4 Sessions Save of c%6 bytes    5 Sessions Load
//	6 Sessions Delete               7 Sessions Devices of name a%4
//
// at address a%4 (two names, one of them empty, with a NUL-byte twin;
// see RunScript) and distribution id b%3 (all zeros, a one, all 0xff).
// The session operations share the addresses, so that a store that mixed
// up its areas differs from the reference.
func RunSenderKeyScript(t testing.TB, s store.Store, script []byte) {
	t.Helper()
	ref := &skRefStore{d: skRefData{keys: map[skRefKey]string{}, sessions: map[store.Address]string{}}}
	r := &scriptReader{b: script}
	for n := 0; r.more(); n++ {
		kind, ops := r.byte()%3, int(r.byte()%8)
		var prog []skOp
		for range ops {
			op := skOp{code: r.byte() % 8, a: r.byte(), b: r.byte(), c: r.byte()}
			if op.code == 0 || op.code == 3 || op.code == 4 {
				for range op.c % 6 {
					op.rec = append(op.rec, r.byte())
				}
			}
			prog = append(prog, op)
		}
		got, gotErr := runScriptTx(s, kind, prog)
		want, wantErr := runScriptTx(ref, kind, prog)
		if !slices.Equal(got, want) || gotErr != wantErr {
			t.Fatalf("transaction %d (%s):\n\tstore:     %v -> %s\n\treference: %v -> %s",
				n, txKinds[kind], got, gotErr, want, wantErr)
		}
		if g, w := dumpSK(t, s), dumpSK(t, ref); g != w {
			t.Fatalf("after transaction %d (%s), the store holds\n%s\nthe reference holds\n%s", n, txKinds[kind], g, w)
		}
	}
}

// SenderKeyScriptSeeds returns hand-written scripts for
// RunSenderKeyScript, a fuzz target's seeds: records saved under four
// addresses and three ids and read back; a replace and deletes, one of
// nothing; an Update whose fn fails after a save and deletes, then a
// View that tries both; an empty record; a record and a session at one
// address, each deleted without touching the other; the caller's copy
// overwritten after Save.
func SenderKeyScriptSeeds() [][]byte {
	return [][]byte{
		{0, 7, 0, 0, 0, 2, 'a', 'b', 0, 1, 1, 3, 'x', 'y', 'z', 0, 2, 2, 1, 'q', 0, 3, 0, 1, 'r', 1, 0, 0, 0, 1, 3, 2, 0, 1, 2, 2, 0},
		{0, 3, 0, 0, 0, 3, 'n', 'e', 'w', 2, 1, 1, 0, 2, 1, 1, 0},
		{0, 1, 0, 1, 1, 1, 'k', 1, 3, 0, 1, 1, 2, 'd', 'd', 2, 1, 1, 0, 2, 2, 1, 2, 2, 2, 0, 1, 1, 1, 'v', 2, 1, 1, 0},
		{0, 2, 0, 3, 2, 0, 1, 3, 2, 0},
		{0, 3, 0, 2, 0, 2, 'g', 'k', 4, 2, 0, 3, 's', 'e', 's', 7, 2, 0, 0, 0, 2, 2, 2, 0, 0, 5, 2, 0, 0, 0, 3, 0, 2, 0, 1, 'h', 6, 2, 0, 0, 1, 2, 0, 0},
		{0, 2, 3, 1, 2, 4, 'c', 'o', 'p', 'y', 1, 1, 2, 0},
	}
}

type skOp struct {
	code, a, b, c byte
	rec           []byte
}

var scriptGroups = []senderkey.DistributionID{
	{},
	{1},
	{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
}

func (op skOp) run(ctx context.Context, tx store.Tx) string {
	addr, id := scriptAddrs[op.a%4], scriptGroups[op.b%3]
	showRec := func(r []byte) string { return "record " + hex.EncodeToString(r) }
	sk, err := store.SenderKeysOf(tx)
	if err != nil && op.code < 4 {
		return "no sender keys"
	}
	switch op.code {
	case 0:
		return errClass(sk.Save(ctx, addr, id, slices.Clone(op.rec)))
	case 1:
		return result(sk.Load(ctx, addr, id))(showRec)
	case 2:
		return errClass(sk.Delete(ctx, addr, id))
	case 3:
		rec := slices.Clone(op.rec)
		err := sk.Save(ctx, addr, id, rec)
		for i := range rec {
			rec[i] ^= 0x5a
		}
		if err != nil {
			return errClass(err)
		}
		return result(sk.Load(ctx, addr, id))(showRec)
	case 4:
		return errClass(tx.Sessions().Save(ctx, addr, slices.Clone(op.rec)))
	case 5:
		return result(tx.Sessions().Load(ctx, addr))(showRec)
	case 6:
		return errClass(tx.Sessions().Delete(ctx, addr))
	default:
		return result(tx.Sessions().Devices(ctx, scriptNames[op.a%4]))(func(d []uint32) string { return fmt.Sprint(d) })
	}
}

// dumpSK describes every record and session a sender-key script can have
// stored.
func dumpSK(t testing.TB, s store.Store) string {
	t.Helper()
	var b strings.Builder
	err := s.View(context.Background(), func(tx store.Tx) error {
		ctx := context.Background()
		for a := range byte(4) {
			for g := range byte(3) {
				fmt.Fprint(&b, skOp{code: 1, a: a, b: g}.run(ctx, tx), " | ")
			}
			fmt.Fprintln(&b, skOp{code: 5, a: a}.run(ctx, tx), " | ", skOp{code: 7, a: a}.run(ctx, tx))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("View for the dump: %v", err)
	}
	return b.String()
}

// skRefStore is the reference for sender-key scripts: an Update works on a
// copy of the data, which a commit keeps. Its transactions have the
// sender keys and the sessions; the other areas are not there (the
// scripts do not touch them).
type skRefStore struct {
	mu sync.Mutex
	d  skRefData
}

type skRefKey struct {
	addr store.Address
	id   senderkey.DistributionID
}

type skRefData struct {
	keys     map[skRefKey]string
	sessions map[store.Address]string
}

func (s *skRefStore) Update(_ context.Context, fn func(store.Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := &skRefTx{d: skRefData{keys: maps.Clone(s.d.keys), sessions: maps.Clone(s.d.sessions)}, write: true}
	defer func() { t.done = true }()
	if err := fn(t); err != nil {
		return err
	}
	s.d = t.d
	return nil
}

func (s *skRefStore) View(_ context.Context, fn func(store.Tx) error) error {
	s.mu.Lock()
	t := &skRefTx{d: s.d}
	s.mu.Unlock()
	defer func() { t.done = true }()
	return fn(t)
}

// skRefTx has only the areas the scripts use; the embedded Tx is nil.
type skRefTx struct {
	store.Tx
	d           skRefData
	write, done bool
}

func (t *skRefTx) writable() error {
	if !t.write || t.done {
		return errRefWrite
	}
	return nil
}

func (t *skRefTx) SenderKeys() store.SenderKeys { return (*skRefKeys)(t) }
func (t *skRefTx) Sessions() store.Sessions     { return (*skRefSessions)(t) }

type skRefKeys skRefTx

func (t *skRefKeys) Load(_ context.Context, a store.Address, id senderkey.DistributionID) ([]byte, error) {
	r, ok := t.d.keys[skRefKey{a, id}]
	if !ok {
		return nil, store.ErrNotFound
	}
	return []byte(r), nil
}

func (t *skRefKeys) Save(_ context.Context, a store.Address, id senderkey.DistributionID, rec []byte) error {
	if err := (*skRefTx)(t).writable(); err != nil {
		return err
	}
	t.d.keys[skRefKey{a, id}] = string(rec)
	return nil
}

func (t *skRefKeys) Delete(_ context.Context, a store.Address, id senderkey.DistributionID) error {
	if err := (*skRefTx)(t).writable(); err != nil {
		return err
	}
	if _, ok := t.d.keys[skRefKey{a, id}]; !ok {
		return store.ErrNotFound
	}
	delete(t.d.keys, skRefKey{a, id})
	return nil
}

type skRefSessions skRefTx

func (t *skRefSessions) Load(_ context.Context, a store.Address) ([]byte, error) {
	r, ok := t.d.sessions[a]
	if !ok {
		return nil, store.ErrNotFound
	}
	return []byte(r), nil
}

func (t *skRefSessions) Save(_ context.Context, a store.Address, rec []byte) error {
	if err := (*skRefTx)(t).writable(); err != nil {
		return err
	}
	t.d.sessions[a] = string(rec)
	return nil
}

func (t *skRefSessions) Delete(_ context.Context, a store.Address) error {
	if err := (*skRefTx)(t).writable(); err != nil {
		return err
	}
	if _, ok := t.d.sessions[a]; !ok {
		return store.ErrNotFound
	}
	delete(t.d.sessions, a)
	return nil
}

func (t *skRefSessions) Devices(_ context.Context, name string) ([]uint32, error) {
	out := []uint32{}
	for a := range t.d.sessions {
		if a.Name == name {
			out = append(out, a.DeviceID)
		}
	}
	slices.Sort(out)
	return out, nil
}

// testSenderKeysScript runs the seed scripts and a seeded random one, one
// after the other on the one store.
func testSenderKeysScript(t *testing.T, s store.Store) {
	senderKeysOf(t, s)
	script := slices.Concat(SenderKeyScriptSeeds()...)
	n := 1500
	if testing.Short() {
		n = 300
	}
	x := uint32(0x5eed)
	for range n {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		script = append(script, byte(x))
	}
	RunSenderKeyScript(t, s, script)
}

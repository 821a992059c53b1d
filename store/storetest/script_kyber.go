package storetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/kyber"
	"github.com/ratchetkit/ratchetkit/store"
)

var (
	scriptKyberOnce sync.Once
	scriptKyberKeys []*kyber.PrivateKey
)

// scriptKyberKey returns one of four fixed Kyber key pairs.
func scriptKyberKey(i byte) *kyber.PrivateKey {
	scriptKyberOnce.Do(func() {
		for j := range 4 {
			d, z := sha256.Sum256([]byte{'K', 'd', byte(j)}), sha256.Sum256([]byte{'K', 'z', byte(j)})
			k, err := kyber.NewPrivateKey(append(d[:], z[:]...))
			if err != nil {
				panic(err)
			}
			scriptKyberKeys = append(scriptKyberKeys, k)
		}
	})
	return scriptKyberKeys[i%4]
}

// scriptKyber returns the Kyber prekey that byte x names: id x%8, key
// (x/8)%4, last resort if bit 5 is set, created x hours after the epoch,
// and a signature (not a valid one: stores do not verify) derived from x.
func scriptKyber(x byte) *kyber.PreKey {
	sig := sha256.Sum256([]byte{'S', x})
	p, err := kyber.NewPreKey(uint32(x%8), scriptKyberKey(x/8), append(sig[:], sig[:]...), time.Unix(int64(x)*3600, 0), x&0x20 != 0)
	if err != nil {
		panic(err)
	}
	return p
}

// kyberName describes a Kyber prekey by the script's names for its parts.
func kyberName(p *kyber.PreKey) string {
	key := "unknown key"
	for i := range 4 {
		if string(scriptKyberKey(byte(i)).Bytes()) == string(p.PrivateKey().Bytes()) {
			key = fmt.Sprintf("kyber key%d", i)
		}
	}
	return fmt.Sprintf("kyber prekey %d %s last resort %t sig %x created %d", p.ID(), key, p.LastResort(), p.Signature()[:4], p.Created().Unix())
}

// kyberOp performs the Kyber operation that op's operand bytes name:
// a%8 picks it, c%8 is the Kyber prekey id, and
//
//	0 Add of one or two prekeys (1+b%2 of c, d; see scriptKyber)
//	1 Load   2 Remove   3 List   4 Count   5 LastID
//	6 MarkUsed with signed prekey d%4 and base key b%4
//	7 MarkUsed with signed prekey (d/4)%4 and base key (b/4)%4
func (op scriptOp) kyberOp(ctx context.Context, tx store.Tx) string {
	k, err := store.KyberPreKeysOf(tx)
	if err != nil {
		return "no Kyber prekeys"
	}
	id := uint32(op.c % 8)
	switch op.a % 8 {
	case 0:
		var pks []*kyber.PreKey
		for _, x := range []byte{op.c, op.d}[:1+op.b%2] {
			pks = append(pks, scriptKyber(x))
		}
		return errClass(k.Add(ctx, pks))
	case 1:
		return result(k.Load(ctx, id))(kyberName)
	case 2:
		return errClass(k.Remove(ctx, id))
	case 3:
		return result(k.List(ctx))(func(l []store.KyberPreKeyInfo) string {
			var b strings.Builder
			for _, i := range l {
				fmt.Fprintf(&b, "%d:%t/%t@%d ", i.ID, i.LastResort, i.Used, i.Created.Unix())
			}
			return "kyber list " + b.String()
		})
	case 4:
		one, last, err := k.Count(ctx)
		return result(fmt.Sprintf("kyber count %d+%d", one, last), err)(func(s string) string { return s })
	case 5:
		return result(k.LastID(ctx))(func(n uint32) string { return fmt.Sprint("kyber last ", n) })
	case 6:
		return errClass(k.MarkUsed(ctx, id, uint32(op.d%4), scriptKey(op.b).PublicKey()))
	default:
		return errClass(k.MarkUsed(ctx, id, uint32(op.d/4%4), scriptKey(op.b/4).PublicKey()))
	}
}

// dumpKyber describes the Kyber prekeys a store holds, and the used
// triples it recorded, which no read shows: in an Update that it rolls
// back, it tries MarkUsed on every triple a script can name.
func dumpKyber(t testing.TB, s store.Store) string {
	t.Helper()
	var b strings.Builder
	err := s.Update(context.Background(), func(tx store.Tx) error {
		if _, ok := tx.(store.KyberTx); !ok {
			return errScript
		}
		for id := range byte(8) {
			fmt.Fprintln(&b, scriptOp{a: 1, c: id}.kyberOp(context.Background(), tx))
		}
		for id := range byte(8) {
			for signed := range byte(4) {
				for base := range byte(4) {
					fmt.Fprint(&b, scriptOp{a: 6, c: id, d: signed, b: base}.kyberOp(context.Background(), tx), " ")
				}
			}
			fmt.Fprintln(&b)
		}
		return errScript
	})
	if err != errScript {
		t.Fatalf("Update for the dump of the triples: %v", err)
	}
	return b.String()
}

func (t *refTx) KyberPreKeys() store.KyberPreKeys { return (*refKyberPreKeys)(t) }

// forgetTriples deletes the triples for which match is true.
func (d *refData) forgetTriples(match func(refTriple) bool) {
	maps.DeleteFunc(d.kyberUsed, func(k refTriple, _ bool) bool { return match(k) })
}

type refKyberPreKeys refTx

func (t *refKyberPreKeys) Load(_ context.Context, id uint32) (*kyber.PreKey, error) {
	k, ok := t.d.kyber[id]
	if !ok {
		return nil, store.ErrNotFound
	}
	return kyber.ParsePreKey(k.blob)
}

func (t *refKyberPreKeys) Add(_ context.Context, pks []*kyber.PreKey) error {
	if err := (*refTx)(t).writable(); err != nil {
		return err
	}
	return refAdd(&t.d.kyber, &t.d.lastKyber, pks, func(pk *kyber.PreKey) (uint32, refKyber) {
		blob, _ := pk.MarshalBinary() // it does not fail
		return pk.ID(), refKyber{blob: blob, lastResort: pk.LastResort(), created: pk.Created().Unix()}
	})
}

func (t *refKyberPreKeys) Remove(_ context.Context, id uint32) error {
	if err := (*refTx)(t).writable(); err != nil {
		return err
	}
	if _, ok := t.d.kyber[id]; !ok {
		return store.ErrNotFound
	}
	delete(t.d.kyber, id)
	t.d.forgetTriples(func(k refTriple) bool { return k.kyber == id })
	return nil
}

func (t *refKyberPreKeys) List(context.Context) ([]store.KyberPreKeyInfo, error) {
	out := []store.KyberPreKeyInfo{}
	for _, id := range slices.Sorted(maps.Keys(t.d.kyber)) {
		k := t.d.kyber[id]
		out = append(out, store.KyberPreKeyInfo{ID: id, LastResort: k.lastResort, Used: k.used, Created: time.Unix(k.created, 0)})
	}
	return out, nil
}

func (t *refKyberPreKeys) Count(context.Context) (oneTime, lastResort int, err error) {
	for _, k := range t.d.kyber {
		if k.lastResort {
			lastResort++
		} else {
			oneTime++
		}
	}
	return oneTime, lastResort, nil
}

func (t *refKyberPreKeys) LastID(context.Context) (uint32, error) { return t.d.lastKyber, nil }

func (t *refKyberPreKeys) MarkUsed(ctx context.Context, id, signedID uint32, baseKey *keys.PublicKey) error {
	if err := (*refTx)(t).writable(); err != nil {
		return err
	}
	if baseKey == nil {
		return errors.New("storetest: reference: nil base key")
	}
	k, ok := t.d.kyber[id]
	if !ok {
		return store.ErrNotFound
	}
	if !k.lastResort {
		return t.Remove(ctx, id)
	}
	tr := refTriple{kyber: id, signed: signedID, base: string(baseKey.Bytes())}
	if t.d.kyberUsed[tr] {
		return store.ErrReusedBaseKey
	}
	t.d.kyberUsed[tr] = true
	k.used = true
	t.d.kyber[id] = k
	return nil
}

// ScriptSeeds returns hand-written scripts for RunScript, a fuzz target's
// seeds: a committed session save and delete; an add, remove and re-add
// of prekeys in one transaction; a failing Update over every area; a View
// that tries to write. Then the Kyber area (operations 1, 8, 9 and 12
// carry it, see kyberOp): a signed prekey, a last-resort and a one-time
// Kyber prekey, a triple used twice, the one-time prekey used, the signed
// prekey removed and the triple accepted again; a failing Update that
// adds, uses and removes one, and a View that tries to write; an add,
// remove and re-add in one transaction; a last-resort prekey used, removed
// and added again under its id, and its triple accepted again.
func ScriptSeeds() [][]byte {
	return [][]byte{
		{0, 2, 14, 0, 3, 0, 0, 1, 2, 3, 16, 0, 0, 0, 0},
		{0, 5, 5, 0, 1, 3, 4, 7, 0, 0, 3, 0, 5, 0, 0, 3, 4, 8, 0, 0, 0, 0, 9, 0, 0, 0, 0},
		{1, 7, 0, 0, 1, 2, 0, 2, 1, 2, 0, 0, 5, 0, 0, 6, 0, 10, 0, 1, 2, 9, 14, 3, 5, 1, 2, 3, 4, 5, 4, 1, 0, 0, 0, 17, 1, 0, 0, 0},
		{2, 3, 14, 0, 1, 0, 0, 9, 15, 0, 0, 0, 0, 12, 0, 0, 0, 0},
		{0, 7, 10, 0, 0, 1, 0, 8, 0, 1, 0x21, 0x02, 9, 6, 0, 1, 1, 9, 6, 0, 1, 1, 12, 6, 0, 2, 0, 13, 0, 0, 1, 0, 1, 6, 0, 1, 1},
		{1, 3, 8, 0, 0, 0x25, 0, 9, 7, 0x04, 5, 0x04, 12, 2, 0, 5, 0, 2, 2, 1, 0, 0, 3, 0, 8, 6, 0, 0, 0},
		{0, 4, 8, 0, 0, 7, 0, 9, 2, 0, 7, 0, 9, 0, 1, 0x27, 0x06, 8, 5, 0, 0, 0, 2, 2, 1, 3, 0, 0, 0, 8, 4, 0, 0, 0},
		{0, 5, 8, 0, 0, 0x21, 0, 9, 6, 0, 1, 1, 9, 2, 0, 1, 0, 9, 0, 0, 0x29, 0, 9, 6, 0, 1, 1},
	}
}

package session

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/signalwire"
	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/ratchet"
	"github.com/ratchetkit/ratchetkit/store"
	"github.com/ratchetkit/ratchetkit/store/memory"
)

// FuzzRecord: parsing never panics, and a record that parses re-marshals
// to the same bytes.
func FuzzRecord(f *testing.F) {
	g := loadGolden(f)
	f.Add([]byte(g.Alice))
	f.Add([]byte(g.Bob))
	f.Add([]byte("rkss\x01\x00\x01"))
	gs := loadGoldenSignal(f)
	f.Add([]byte(gs.Alice))
	f.Add([]byte(gs.Bob))
	f.Add([]byte("rkss\x02\x00\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := new(record)
		if err := r.parse(b); err != nil {
			if !errors.Is(err, ErrInvalidRecord) {
				t.Fatalf("error %v does not wrap ErrInvalidRecord", err)
			}
			return
		}
		out, err := r.appendBinary(nil)
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("parsed record re-marshals differently: %v", err)
		}
	})
}

// decryptFixture is Bob's state from makeFixture, restorable into a fresh
// store for every fuzz input: his keys (one-time prekey 7 consumed, 8
// left), Alice's trusted key, and his record with her.
type decryptFixture struct {
	bobIK     *keys.IdentityKeyPair
	spk       *keys.SignedPreKey
	opk8      *keys.OneTimePreKey
	aliceIK   *keys.PublicKey
	bobRecord []byte
	// Seeds: messages Bob accepts.
	late, ratchetMsg, carolPreKey []byte
}

var (
	fuzzFixtureOnce sync.Once
	fuzzFixture     *decryptFixture
)

func getDecryptFixture(t testing.TB) *decryptFixture {
	fuzzFixtureOnce.Do(func() {
		ctx := context.Background()
		fx := makeFixture(t)
		d := &decryptFixture{bobIK: fx.bob.ik, aliceIK: fx.alice.ik.PublicKey(), bobRecord: fx.bobRecord, late: fx.late}
		err := fx.bob.st.View(ctx, func(tx store.Tx) error {
			var err error
			if d.spk, err = tx.SignedPreKeys().Load(ctx, 1); err != nil {
				return err
			}
			d.opk8, err = tx.PreKeys().Load(ctx, 8)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		d.ratchetMsg = must(t)(fx.alice.m.Encrypt(ctx, fx.bob.addr, []byte("ratchet")))
		carol := newFixedParty(t, "carol", Config{})
		if err := carol.m.StartSession(ctx, fx.bob.addr, fx.bob.bundle(8)); err != nil {
			t.Fatal(err)
		}
		d.carolPreKey = must(t)(carol.m.Encrypt(ctx, fx.bob.addr, []byte("hi from carol")))
		fuzzFixture = d
	})
	if fuzzFixture == nil {
		t.Fatal("fixture failed")
	}
	return fuzzFixture
}

var fuzzAddrs = []store.Address{{Name: "alice", DeviceID: 1}, {Name: "carol", DeviceID: 1}, {Name: "mallory", DeviceID: 9}}

// restore returns a Manager over a new store holding the fixture.
func (d *decryptFixture) restore(t testing.TB) (*Manager, *memory.Store) {
	ctx := context.Background()
	st := memory.New()
	err := st.Update(ctx, func(tx store.Tx) error {
		if err := tx.Local().Save(ctx, &store.LocalIdentity{KeyPair: d.bobIK, DeviceID: 1}); err != nil {
			return err
		}
		if err := tx.SignedPreKeys().Add(ctx, d.spk); err != nil {
			return err
		}
		if err := tx.PreKeys().Add(ctx, []*keys.OneTimePreKey{d.opk8}); err != nil {
			return err
		}
		if _, err := tx.Identities().Save(ctx, fuzzAddrs[0], d.aliceIK); err != nil {
			return err
		}
		return tx.Sessions().Save(ctx, fuzzAddrs[0], d.bobRecord)
	})
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m, st
}

// digest hashes everything the store holds that Decrypt may change.
func digest(t testing.TB, st store.Store) [32]byte { return storeDigest(t, st, fuzzAddrs) }

// storeDigest hashes everything the store holds that Decrypt may change
// at the given addresses, for either protocol: each address's record and
// identity, the one-time EC prekeys, the signed prekeys and the Kyber
// prekeys (a used one-time Kyber prekey is removed).
func storeDigest(t testing.TB, st store.Store, addrs []store.Address) [32]byte {
	t.Helper()
	ctx := context.Background()
	h := sha256.New()
	err := st.View(ctx, func(tx store.Tx) error {
		for _, a := range addrs {
			rec, err := tx.Sessions().Load(ctx, a)
			fmt.Fprintf(h, "%v %x %v|", a, rec, err)
			k, err := tx.Identities().Load(ctx, a)
			fmt.Fprintf(h, "%x %v|", k, err)
		}
		n, err := tx.PreKeys().Count(ctx)
		fmt.Fprintf(h, "%d %v|", n, err)
		spks, err := tx.SignedPreKeys().List(ctx)
		fmt.Fprintf(h, "%v %v|", spks, err)
		kp, err := store.KyberPreKeysOf(tx)
		if err != nil {
			return err
		}
		list, err := kp.List(ctx)
		fmt.Fprintf(h, "%v %v", list, err)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

// FuzzDecrypt: Decrypt of arbitrary bytes, claimed to come from one of
// three addresses (the first byte chooses), never panics, and when it
// fails it leaves the store exactly as it was.
func FuzzDecrypt(f *testing.F) {
	d := getDecryptFixture(f)
	for _, s := range decryptSeeds(d) {
		f.Add(s)
	}
	_, st0 := d.restore(f)
	clean := digest(f, st0)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		m, st := d.restore(t)
		addr := fuzzAddrs[int(data[0])%len(fuzzAddrs)]
		pt, err := m.Decrypt(context.Background(), addr, data[1:])
		checkDecryptOutcome(t, st, clean, pt, err)
	})
}

// checkDecryptOutcome checks a fuzzed Decrypt: a failure returns no
// plaintext and leaves the store's digest clean, a success changes it.
func checkDecryptOutcome(t *testing.T, st store.Store, clean [32]byte, pt []byte, err error) {
	t.Helper()
	if err != nil {
		if pt != nil {
			t.Fatal("plaintext returned with an error")
		}
		if digest(t, st) != clean {
			t.Fatalf("failed Decrypt (%v) changed the store", err)
		}
		return
	}
	if digest(t, st) == clean {
		t.Fatal("successful Decrypt saved nothing")
	}
}

// decryptSeeds are valid messages and near misses: what FuzzDecrypt's
// committed corpus holds.
func decryptSeeds(d *decryptFixture) [][]byte {
	with := func(addr byte, msg []byte) []byte { return append([]byte{addr}, msg...) }
	flip := func(b []byte, i int) []byte { c := bytes.Clone(b); c[i] ^= 1; return c }
	return [][]byte{
		with(0, d.late),
		with(0, d.ratchetMsg),
		with(1, d.carolPreKey),
		with(2, d.carolPreKey),               // a new session from an unknown address
		with(0, d.carolPreKey),               // carol's key at alice's address: untrusted
		with(0, flip(d.late, len(d.late)-1)), // tampered tag
		with(0, flip(d.late, 69)),            // spk_id changed: malformed
		with(1, flip(d.carolPreKey, 73)),     // opk_id changed: unknown prekey
		with(1, d.carolPreKey[:133]),         // short
		with(0, d.ratchetMsg[:58]),
		with(0, []byte{1}),
		with(0, nil),
	}
}

// TestWriteFuzzSeeds writes the seeds to testdata/fuzz with -update, so
// that plain go test runs them too.
func TestWriteFuzzSeeds(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite the corpus")
	}
	d := getDecryptFixture(t)
	g := loadGolden(t)
	write := func(target string, seeds [][]byte) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, s := range seeds {
			body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(s)) + ")\n"
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	write("FuzzDecrypt", decryptSeeds(d))
	trunc := bytes.Clone(g.Bob[:len(g.Bob)/2])
	write("FuzzRecord", [][]byte{g.Alice, g.Bob, trunc, append(bytes.Clone(g.Alice), 0)})
}

// FuzzSignalDecrypt: a Signal Manager holding Bob's golden version-2
// record takes arbitrary messages from Alice: nothing panics, a failed
// Decrypt changes nothing stored, a successful one saves.
func FuzzSignalDecrypt(f *testing.F) {
	g := loadGoldenSignal(f)
	f.Add([]byte(g.Late))
	pk, _, err := signalwire.ParsePreKeySignalMessage(g.Late)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(bytes.Clone(pk.Message))
	f.Add([]byte{0x44, 0x0a})
	f.Add([]byte{0x44, 0x08, 0x01})
	ctx := context.Background()
	alice := store.Address{Name: "alice", DeviceID: 1}
	f.Fuzz(func(t *testing.T, msg []byte) {
		st := memory.New()
		if err := st.Update(ctx, func(tx store.Tx) error { return tx.Sessions().Save(ctx, alice, g.Bob) }); err != nil {
			t.Fatal(err)
		}
		m, err := New(st, &Config{Protocol: ratchet.Signal})
		if err != nil {
			t.Fatal(err)
		}
		clean := digest(t, st)
		pt, err := m.Decrypt(ctx, alice, msg)
		checkDecryptOutcome(t, st, clean, pt, err)
	})
}

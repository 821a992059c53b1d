package senderkey

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
)

// pair is a Go sender and one Go member holding its chain.
func pair(t testing.TB) (id DistributionID, sender, recv *Record) {
	t.Helper()
	id = NewDistributionID()
	sender = new(Record)
	dm, err := sender.DistributionMessage(id)
	if err != nil {
		t.Fatal(err)
	}
	dm2, err := ParseDistributionMessage(dm.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	recv = new(Record)
	recv.Process(dm2)
	return id, sender, recv
}

func send(t testing.TB, r *Record, id DistributionID, n int) [][]byte {
	t.Helper()
	var out [][]byte
	for i := range n {
		b, err := r.Encrypt(id, []byte{byte(i), byte(i >> 8)})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func TestRecordRoundTrip(t *testing.T) {
	id, sender, recv := pair(t)
	msgs := send(t, sender, id, 50)
	for _, i := range []int{40, 3, 10} {
		if _, err := recv.Decrypt(msgs[i]); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []*Record{sender, recv, new(Record)} {
		b := r.Bytes()
		r2, err := ParseRecord(b)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(r2.Bytes(), b) {
			t.Fatal("record does not round-trip")
		}
	}
	// A parsed record goes on where the original was.
	r2, _ := ParseRecord(recv.Bytes())
	s2, _ := ParseRecord(sender.Bytes())
	for _, i := range []int{0, 41, 39} {
		if _, err := r2.Decrypt(msgs[i]); err != nil {
			t.Fatalf("message %d after a round trip: %v", i, err)
		}
	}
	if _, err := r2.Decrypt(msgs[40]); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("used key after a round trip: %v", err)
	}
	next, err := s2.Encrypt(id, []byte("next"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := r2.Decrypt(next); err != nil || string(pt) != "next" {
		t.Fatalf("parsed sender: %v", err)
	}
}

// TestParseRecordHostile: every truncation and a set of broken records are
// refused, and the error shows none of the bytes.
func TestParseRecordHostile(t *testing.T) {
	id, sender, recv := pair(t)
	msgs := send(t, sender, id, 5)
	recv.Decrypt(msgs[4])
	good := sender.Bytes()
	two := new(Record)
	two.states = append(two.states, sender.states[0], recv.states[0]) // same chain id twice
	for n := range len(good) {
		if _, err := ParseRecord(good[:n]); !errors.Is(err, ErrMalformed) {
			t.Fatalf("truncated to %d: %v", n, err)
		}
	}
	set := func(b []byte, i int, v byte) []byte { c := bytes.Clone(b); c[i] = v; return c }
	rb := recv.Bytes()
	// rb: magic(4) version(1) count(1) chain(4) iter(4) ck(32) pub(33) privlen(1) nkeys(2) keys...
	keysAt := 6 + 4 + 4 + 32 + 33 + 1 + 2
	cases := map[string][]byte{
		"magic":               set(good, 0, 'X'),
		"version 2":           set(good, 4, 2),
		"six states":          set(good, 5, 6),
		"trailing byte":       append(bytes.Clone(good), 0),
		"duplicate chain id":  two.Bytes(),
		"private key of 31":   set(good, 6+4+4+32+33, 31),
		"private for another": append(append(bytes.Clone(rb[:6+4+4+32+33]), 32), append(bytes.Clone(sender.states[0].chainKey[:]), rb[6+4+4+32+33+1:]...)...),
		"skipped at iteration": func() []byte {
			c := bytes.Clone(rb)
			c[keysAt+3] = 5 // the last skipped key's iteration becomes the chain's
			return c
		}(),
		"bad public key": set(good, 6+4+4+32, 0x06),
	}
	for name, b := range cases {
		_, err := ParseRecord(b)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		} else if strings.Contains(err.Error(), hex.EncodeToString(b[6:12])) {
			t.Errorf("%s: the error shows the bytes", name)
		}
	}
}

// TestSkippedKeysBound: two jumps of 1 500 keep the newest 2 000 keys of
// both.
func TestSkippedKeysBound(t *testing.T) {
	id, sender, recv := pair(t)
	msgs := send(t, sender, id, 3002)
	if _, err := recv.Decrypt(msgs[1500]); err != nil {
		t.Fatal(err)
	}
	if _, err := recv.Decrypt(msgs[3001]); err != nil {
		t.Fatal(err)
	}
	if n := len(recv.states[0].skipped); n != MaxSkippedKeys {
		t.Fatalf("%d skipped keys kept", n)
	}
	// Kept: 1000..1499 and 1501..3000 (2 000 keys). Dropped: 0..999.
	for i, want := range map[int]error{999: ErrDuplicate, 1000: nil, 1499: nil, 1500: ErrDuplicate, 1501: nil, 3000: nil} {
		if _, err := recv.Decrypt(msgs[i]); !errors.Is(err, want) {
			t.Errorf("message %d: %v, want %v", i, err, want)
		}
	}
}

// TestSkippedKeysWiped: dropping the oldest skipped keys leaves no copy of
// a seed past the slice's length, where the next commit may not reach.
func TestSkippedKeysWiped(t *testing.T) {
	id, sender, recv := pair(t)
	msgs := send(t, sender, id, 3002)
	for _, i := range []int{1500, 3001} {
		if _, err := recv.Decrypt(msgs[i]); err != nil {
			t.Fatal(err)
		}
	}
	sk := recv.states[0].skipped
	for i, k := range sk[len(sk):cap(sk)] {
		if k.seed != ([32]byte{}) {
			t.Fatalf("a seed is left at %d, past the %d kept", len(sk)+i, len(sk))
		}
	}
}

// TestStatesBound: a sixth chain drops the oldest; processing a held chain
// again moves it to the front without rewinding it.
func TestStatesBound(t *testing.T) {
	id := NewDistributionID()
	recv := new(Record)
	var senders []*Record
	for range 6 {
		s := new(Record)
		dm, _ := s.DistributionMessage(id)
		recv.Process(dm)
		senders = append(senders, s)
	}
	if len(recv.states) != MaxStates {
		t.Fatalf("%d states", len(recv.states))
	}
	first := send(t, senders[0], id, 1)[0]
	if _, err := recv.Decrypt(first); !errors.Is(err, ErrNoState) {
		t.Fatalf("evicted chain: %v", err)
	}
	m := send(t, senders[1], id, 2)
	if _, err := recv.Decrypt(m[1]); err != nil {
		t.Fatal(err)
	}
	dm, _ := senders[1].DistributionMessage(id) // now at iteration 2
	old := *dm
	old.Iteration = 0
	recv.Process(&old)
	if recv.states[0].chainID != dm.ChainID || recv.states[0].iteration != 2 {
		t.Fatal("re-processing did not keep the held chain at the front")
	}
	if _, err := recv.Decrypt(m[1]); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("re-processing rewound the chain: %v", err)
	}
	// Another signing key on the same chain id replaces the chain.
	other := new(Record)
	odm, _ := other.DistributionMessage(id)
	odm.ChainID = dm.ChainID
	recv.Process(odm)
	if _, err := recv.Decrypt(m[0]); !errors.Is(err, ErrInvalidSignature) {
		t.Fatalf("a replaced chain still decrypts: %v", err)
	}
}

func TestSendErrors(t *testing.T) {
	id, sender, recv := pair(t)
	if _, err := recv.Encrypt(id, nil); !errors.Is(err, ErrNoSendingState) {
		t.Fatal(err)
	}
	if _, err := new(Record).Encrypt(id, nil); !errors.Is(err, ErrNoSendingState) {
		t.Fatal(err)
	}
	sender.states[0].iteration = math.MaxUint32
	if _, err := sender.Encrypt(id, nil); !errors.Is(err, ErrChainExhausted) {
		t.Fatal(err)
	}
	sender.states[0].iteration = math.MaxUint32 - 1
	last, err := sender.Encrypt(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	recv.states[0].iteration = math.MaxUint32 - 1
	recv.states[0].chainKey = sender.states[0].chainKey // any key: the signature comes first
	if _, err := recv.Decrypt(last); errors.Is(err, ErrChainExhausted) {
		t.Fatal("the last usable iteration was refused as exhausted")
	}
}

// TestFailedDecryptChangesNothing: a failure after the chain walk (a
// correctly signed ciphertext that does not decrypt) leaves the record
// byte-identical, for a jump and for a stored key alike.
func TestFailedDecryptChangesNothing(t *testing.T) {
	id, sender, recv := pair(t)
	msgs := send(t, sender, id, 10)
	if _, err := recv.Decrypt(msgs[5]); err != nil {
		t.Fatal(err)
	}
	// Sign garbage ciphertexts at a stored iteration (2) and a future one.
	for _, it := range []uint32{2, 9, 400} {
		w := forge(t, sender, id, it, bytes.Repeat([]byte{7}, 32))
		before := recv.Bytes()
		if _, err := recv.Decrypt(w); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("iteration %d: %v", it, err)
		}
		if !bytes.Equal(before, recv.Bytes()) {
			t.Fatalf("iteration %d: a failed decrypt changed the record", it)
		}
	}
	for _, i := range []int{2, 9} {
		if _, err := recv.Decrypt(msgs[i]); err != nil {
			t.Fatalf("message %d after the failures: %v", i, err)
		}
	}
}

// forge signs a message with the sender's key at any iteration.
func forge(t testing.TB, sender *Record, id DistributionID, it uint32, ct []byte) []byte {
	t.Helper()
	s := sender.states[0]
	saved := *s
	r := &Record{states: []*state{{chainID: s.chainID, iteration: it, signPub: s.signPub, signPriv: s.signPriv}}}
	b, err := r.Encrypt(id, nil)
	*s = saved
	if err != nil {
		t.Fatal(err)
	}
	body := append([]byte(nil), b[:len(b)-64]...)
	// Replace the ciphertext (the last field: 0x22, length, bytes).
	ctStart := len(body) - 16
	body = append(append(body[:ctStart-2], 0x22, byte(len(ct))), ct...)
	return append(body, s.signPriv.Sign(body)...)
}

func TestSecretsRedacted(t *testing.T) {
	id, sender, recv := pair(t)
	dm, _ := sender.DistributionMessage(id)
	secrets := []string{hex.EncodeToString(dm.ChainKey[:]), hex.EncodeToString(dm.ChainKey[:8]),
		hex.EncodeToString(sender.states[0].signPriv.PrivateKey().Bytes()[:8])}
	for _, v := range []any{dm, *dm, sender, *sender, recv, sender.states[0]} {
		for _, f := range []string{"%v", "%+v", "%#v", "%x", "%s", "%q"} {
			out := fmt.Sprintf(f, v)
			for _, s := range secrets {
				if strings.Contains(strings.ToLower(out), s) {
					t.Fatalf("%s of %T shows a secret: %s", f, v, out)
				}
			}
		}
	}
}

func TestDistributionID(t *testing.T) {
	id := DistributionID{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 1, 2, 3, 4, 5, 6, 7, 8}
	if s := id.String(); s != "12345678-9abc-def0-0102-030405060708" {
		t.Fatal(s)
	}
	a, b := NewDistributionID(), NewDistributionID()
	if a == b || a[6]>>4 != 4 || a[8]>>6 != 2 {
		t.Fatalf("%v %v", a, b)
	}
}

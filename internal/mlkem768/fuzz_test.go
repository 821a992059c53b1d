package mlkem768

import (
	"bytes"
	"crypto/mlkem/mlkemtest"
	"testing"
)

// FuzzAgainstCryptoMLKEM: for any seed, message and ciphertext bytes, the
// keys, the encapsulation (whole and incremental) and the decapsulation of
// the fuzzed ciphertext (almost always an implicit rejection) agree with
// crypto/mlkem.
func FuzzAgainstCryptoMLKEM(f *testing.F) {
	f.Add(make([]byte, SeedSize), make([]byte, 32), make([]byte, CiphertextSize))
	f.Add(bytes.Repeat([]byte{0xff}, SeedSize), bytes.Repeat([]byte{0xff}, 32), bytes.Repeat([]byte{0xff}, CiphertextSize))
	f.Fuzz(func(t *testing.T, seed, m, c []byte) {
		if len(seed) < SeedSize || len(m) < 32 {
			return
		}
		seed, m = seed[:SeedSize], m[:32]
		c = append(c, make([]byte, CiphertextSize)...)[:CiphertextSize]
		std, dk := keyPairs(t, seed)
		wantK, wantC, _ := mlkemtest.Encapsulate768(std.EncapsulationKey(), m)
		ct1, st, key, _ := Encapsulate1(dk.Header(), m)
		ct2, err := st.Encapsulate2(dk.Vector())
		if err != nil || !bytes.Equal(append(ct1, ct2...), wantC) || !bytes.Equal(key, wantK) {
			t.Fatal("incremental encapsulation differs")
		}
		want, _ := std.Decapsulate(c)
		got, err := dk.DecapsulateFull(c)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatal("decapsulation differs")
		}
	})
}

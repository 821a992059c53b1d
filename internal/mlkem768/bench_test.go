package mlkem768

import (
	"crypto/mlkem"
	"crypto/mlkem/mlkemtest"
	"testing"

	"github.com/ratchetkit/ratchetkit/internal/testutil"
)

// The benchmarks come in pairs, each beside crypto/mlkem (the floor) doing
// the same operation: compare them within one run.

func benchInputs(b *testing.B) (seed, m []byte, std *mlkem.DecapsulationKey768, dk *DecapsulationKey) {
	r := seeded(3)
	seed, m = make([]byte, SeedSize), make([]byte, 32)
	r.Read(seed)
	r.Read(m)
	std, _ = mlkem.NewDecapsulationKey768(seed)
	dk, _ = NewDecapsulationKey(seed)
	b.ReportAllocs()
	b.ResetTimer()
	return
}

func BenchmarkKeyGen(b *testing.B) {
	b.Run("floor=crypto/mlkem", func(b *testing.B) {
		seed, _, _, _ := benchInputs(b)
		for b.Loop() {
			dk, _ := mlkem.NewDecapsulationKey768(seed)
			_ = dk.EncapsulationKey().Bytes()
		}
	})
	b.Run("mlkem768", func(b *testing.B) {
		seed, _, _, _ := benchInputs(b)
		for b.Loop() {
			dk, _ := NewDecapsulationKey(seed)
			_ = dk.Header()
			_ = dk.Vector()
		}
	})
}

func BenchmarkEncapsulate(b *testing.B) {
	b.Run("floor=crypto/mlkem", func(b *testing.B) {
		_, m, std, _ := benchInputs(b)
		ek := std.EncapsulationKey().Bytes()
		b.ResetTimer()
		for b.Loop() {
			pk, _ := mlkem.NewEncapsulationKey768(ek)
			mlkemtest.Encapsulate768(pk, m)
		}
	})
	b.Run("mlkem768", func(b *testing.B) {
		_, m, std, _ := benchInputs(b)
		ek := std.EncapsulationKey().Bytes()
		b.ResetTimer()
		for b.Loop() {
			Encapsulate(ek, m)
		}
	})
	// SPQR's path: ct1 from the header, then ct2 from the vector, which
	// expands Â once and checks the vector against the header's hash.
	b.Run("mlkem768-incremental", func(b *testing.B) {
		_, m, _, dk := benchInputs(b)
		hdr, vec := dk.Header(), dk.Vector()
		b.ResetTimer()
		for b.Loop() {
			_, st, _, _ := Encapsulate1(hdr, m)
			st.Encapsulate2(vec)
		}
	})
}

func BenchmarkDecapsulate(b *testing.B) {
	b.Run("floor=crypto/mlkem", func(b *testing.B) {
		_, m, std, _ := benchInputs(b)
		_, c, _ := mlkemtest.Encapsulate768(std.EncapsulationKey(), m)
		b.ResetTimer()
		for b.Loop() {
			std.Decapsulate(c)
		}
	})
	b.Run("mlkem768", func(b *testing.B) {
		_, m, std, dk := benchInputs(b)
		_, c, _ := mlkemtest.Encapsulate768(std.EncapsulationKey(), m)
		b.ResetTimer()
		for b.Loop() {
			dk.Decapsulate(c[:Ciphertext1Size], c[Ciphertext1Size:])
		}
	})
}

// BenchmarkRatio interleaves each operation with crypto/mlkem's on the
// thread's CPU clock (testutil.Interleave): x-floor is the ratio, robust
// to the load of a shared machine.
func BenchmarkRatio(b *testing.B) {
	_, m, std, dk := benchInputs(b)
	seed := dk.Bytes()
	ek := std.EncapsulationKey().Bytes()
	_, c, _ := mlkemtest.Encapsulate768(std.EncapsulationKey(), m)
	hdr, vec := dk.Header(), dk.Vector()
	b.Run("op=keygen", func(b *testing.B) {
		testutil.Interleave(b, func() {
			k, _ := mlkem.NewDecapsulationKey768(seed)
			_ = k.EncapsulationKey().Bytes()
		}, func() {
			k, _ := NewDecapsulationKey(seed)
			_, _ = k.Header(), k.Vector()
		})
	})
	b.Run("op=encapsulate", func(b *testing.B) {
		testutil.Interleave(b, func() {
			pk, _ := mlkem.NewEncapsulationKey768(ek)
			mlkemtest.Encapsulate768(pk, m)
		}, func() {
			Encapsulate(ek, m)
		})
	})
	b.Run("op=encapsulate-incremental", func(b *testing.B) {
		testutil.Interleave(b, func() {
			pk, _ := mlkem.NewEncapsulationKey768(ek)
			mlkemtest.Encapsulate768(pk, m)
		}, func() {
			_, st, _, _ := Encapsulate1(hdr, m)
			st.Encapsulate2(vec)
		})
	})
	b.Run("op=decapsulate", func(b *testing.B) {
		testutil.Interleave(b, func() {
			std.Decapsulate(c)
		}, func() {
			dk.DecapsulateFull(c)
		})
	})
}

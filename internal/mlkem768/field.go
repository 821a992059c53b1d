package mlkem768

// The ring R_q = Z_q[X]/(X^256 + 1) of FIPS 203 §4.3, its number-theoretic
// transform, and the compression maps of §4.2.1.
//
// Every function here runs in time independent of the values it handles:
// reductions are multiplications and shifts followed by a masked
// subtraction, never a comparison that branches, and the only tables
// (zetas, gammas) are indexed by loop counters, never by coefficients.

const (
	q = 3329
	n = 256

	// barrettMultiplier is ⌊2^24 / q⌋. For x < 2^24 the quotient
	// (x·barrettMultiplier) >> 24 is ⌊x/q⌋ or one less, so one masked
	// subtraction finishes the reduction (checked exhaustively over
	// [0, q²) by TestBarrettReduce).
	barrettMultiplier = 5039
	barrettShift      = 24
)

// fieldElement is an integer modulo q, always held in [0, q).
type fieldElement uint16

// ringElement is a polynomial of R_q; nttElement is one in the NTT domain.
type (
	ringElement [n]fieldElement
	nttElement  [n]fieldElement
)

// reduceOnce maps a in [0, 2q) to a mod q: it subtracts q, and adds it back
// when the result went negative, which the sign bit of the 16-bit
// difference tells without a branch.
func reduceOnce(a uint16) fieldElement {
	x := a - q
	x += (x >> 15) * q
	return fieldElement(x)
}

func fieldAdd(a, b fieldElement) fieldElement { return reduceOnce(uint16(a + b)) }

func fieldSub(a, b fieldElement) fieldElement { return reduceOnce(uint16(a - b + q)) }

// barrettReduce maps x < 2^24 to x mod q.
func barrettReduce(x uint32) fieldElement {
	quotient := uint32((uint64(x) * barrettMultiplier) >> barrettShift)
	return reduceOnce(uint16(x - quotient*q))
}

func fieldMul(a, b fieldElement) fieldElement { return barrettReduce(uint32(a) * uint32(b)) }

// compress is Compress_d (FIPS 203 (4.7)), round(2^d·x / q) mod 2^d, for
// d ≤ 11. The division is a Barrett quotient corrected by the remainder's
// position against q/2 and 3q/2, each tested through a sign bit.
func compress(x fieldElement, d uint8) uint16 {
	dividend := uint32(x) << d
	quotient := uint32((uint64(dividend) * barrettMultiplier) >> barrettShift)
	remainder := dividend - quotient*q
	// remainder is in [0, 2q); round to nearest.
	quotient += (q/2 - remainder) >> 31 & 1
	quotient += (q + q/2 - remainder) >> 31 & 1
	return uint16(quotient & (1<<d - 1))
}

// decompress is Decompress_d (FIPS 203 (4.8)), round(q·y / 2^d).
func decompress(y uint16, d uint8) fieldElement {
	return fieldElement((uint32(y)*q + 1<<(d-1)) >> d)
}

func polyAdd[T ~[n]fieldElement](a, b T) (s T) {
	for i := range s {
		s[i] = fieldAdd(a[i], b[i])
	}
	return s
}

func polySub[T ~[n]fieldElement](a, b T) (s T) {
	for i := range s {
		s[i] = fieldSub(a[i], b[i])
	}
	return s
}

// zetas[i] = 17^BitRev7(i) mod q and gammas[i] = 17^(2·BitRev7(i)+1) mod q
// (FIPS 203 Appendix A), computed once from their definition.
var zetas, gammas = func() (z [128]fieldElement, g [128]fieldElement) {
	var pow [256]fieldElement
	pow[0] = 1
	for i := 1; i < 256; i++ {
		pow[i] = fieldMul(pow[i-1], 17)
	}
	for i := range 128 {
		r := 0
		for b := range 7 {
			r |= (i >> b & 1) << (6 - b)
		}
		z[i] = pow[r]
		g[i] = pow[2*r+1]
	}
	return z, g
}()

// ntt is FIPS 203 Algorithm 9.
func ntt(f ringElement) nttElement {
	k := 1
	for length := 128; length >= 2; length /= 2 {
		for start := 0; start < n; start += 2 * length {
			zeta := zetas[k]
			k++
			for j := start; j < start+length; j++ {
				t := fieldMul(zeta, f[j+length])
				f[j+length] = fieldSub(f[j], t)
				f[j] = fieldAdd(f[j], t)
			}
		}
	}
	return nttElement(f)
}

// inverseNTT is FIPS 203 Algorithm 10.
func inverseNTT(f nttElement) ringElement {
	k := 127
	for length := 2; length <= 128; length *= 2 {
		for start := 0; start < n; start += 2 * length {
			zeta := zetas[k]
			k--
			for j := start; j < start+length; j++ {
				t := f[j]
				f[j] = fieldAdd(t, f[j+length])
				f[j+length] = fieldMul(zeta, fieldSub(f[j+length], t))
			}
		}
	}
	for i := range f {
		f[i] = fieldMul(f[i], 3303) // 128⁻¹ mod q
	}
	return ringElement(f)
}

// nttMulAdd returns acc + a∘b, the NTT-domain product of FIPS 203
// Algorithms 11 and 12 added to acc.
func nttMulAdd(acc, a, b *nttElement) {
	for i := range 128 {
		a0, a1 := a[2*i], a[2*i+1]
		b0, b1 := b[2*i], b[2*i+1]
		c0 := fieldAdd(fieldMul(a0, b0), fieldMul(fieldMul(a1, b1), gammas[i]))
		c1 := fieldAdd(fieldMul(a0, b1), fieldMul(a1, b0))
		acc[2*i] = fieldAdd(acc[2*i], c0)
		acc[2*i+1] = fieldAdd(acc[2*i+1], c1)
	}
}

package mlkem768

import "crypto/sha3"

// sampleNTT is FIPS 203 Algorithm 7: rejection sampling of an NTT-domain
// polynomial from SHAKE128(ρ ‖ j ‖ i). It branches on the XOF output, which
// is derived from the public seed ρ only.
func sampleNTT(rho []byte, j, i byte) nttElement {
	h := sha3.NewSHAKE128()
	h.Write(rho)
	h.Write([]byte{j, i})
	var a nttElement
	var buf [168]byte // one SHAKE128 block
	k := 0
	for k < n {
		h.Read(buf[:])
		for off := 0; off+3 <= len(buf) && k < n; off += 3 {
			d1 := uint16(buf[off]) | uint16(buf[off+1]&0x0f)<<8
			d2 := uint16(buf[off+1])>>4 | uint16(buf[off+2])<<4
			if d1 < q {
				a[k] = fieldElement(d1)
				k++
			}
			if d2 < q && k < n {
				a[k] = fieldElement(d2)
				k++
			}
		}
	}
	return a
}

// sampleCBD2 is SamplePolyCBD_2 (FIPS 203 Algorithm 8) over
// PRF_2(s, b) = SHAKE256(s ‖ b, 128 bytes). Each coefficient is the
// difference of two bit sums, mapped into [0, q) by adding q and one
// masked reduction: no branch and no table touches the secret bits.
func sampleCBD2(s []byte, b byte) ringElement {
	h := sha3.NewSHAKE256()
	h.Write(s)
	h.Write([]byte{b})
	var buf [128]byte
	h.Read(buf[:])
	var f ringElement
	for i, x := range buf {
		for half := range 2 {
			nib := x >> (4 * half)
			a := uint16(nib&1 + nib>>1&1)
			c := uint16(nib>>2&1 + nib>>3&1)
			f[2*i+half] = reduceOnce(a - c + q)
		}
	}
	clear(buf[:])
	return f
}

package mlkem768

import "errors"

// The byte encodings of FIPS 203 §4.2.1 (Algorithms 5 and 6) for the
// widths ML-KEM-768 uses: 12 (keys), 10 (u), 4 (v) and 1 (messages).

var errModulus = errors.New("mlkem768: encoded coefficient not below q")

// encode12 appends ByteEncode_12(f).
func encode12(b []byte, f *nttElement) []byte {
	for i := 0; i < n; i += 2 {
		x, y := uint16(f[i]), uint16(f[i+1])
		b = append(b, byte(x), byte(x>>8)|byte(y<<4), byte(y>>4))
	}
	return b
}

// decode12 is ByteDecode_12 for len(b) = 384. It reports, without
// branching on the coefficients, whether every one was below q (the
// modulus check of FIPS 203 §7.2), so it serves for secret keys as well as
// public ones; out-of-range values are stored reduced.
func decode12(b []byte) (nttElement, bool) {
	var f nttElement
	var bad uint16
	for i := 0; i < n; i += 2 {
		c := b[3*i/2 : 3*i/2+3]
		x := uint16(c[0]) | uint16(c[1]&0x0f)<<8
		y := uint16(c[1])>>4 | uint16(c[2])<<4
		// (q-1-x) has its sign bit set exactly when x ≥ q.
		bad |= (q - 1 - x) | (q - 1 - y)
		f[i] = barrettReduce(uint32(x))
		f[i+1] = barrettReduce(uint32(y))
	}
	return f, bad>>15 == 0
}

// encodeCompressed10 appends ByteEncode_10(Compress_10(f)).
func encodeCompressed10(b []byte, f *ringElement) []byte {
	for i := 0; i < n; i += 4 {
		var x uint64
		for j := range 4 {
			x |= uint64(compress(f[i+j], 10)) << (10 * j)
		}
		b = append(b, byte(x), byte(x>>8), byte(x>>16), byte(x>>24), byte(x>>32))
	}
	return b
}

// decodeDecompressed10 is Decompress_10(ByteDecode_10(b)) for len(b) = 320.
func decodeDecompressed10(b []byte) ringElement {
	var f ringElement
	for i := 0; i < n; i += 4 {
		c := b[5*i/4 : 5*i/4+5]
		x := uint64(c[0]) | uint64(c[1])<<8 | uint64(c[2])<<16 | uint64(c[3])<<24 | uint64(c[4])<<32
		for j := range 4 {
			f[i+j] = decompress(uint16(x>>(10*j))&0x3ff, 10)
		}
	}
	return f
}

// encodeCompressed4 appends ByteEncode_4(Compress_4(f)).
func encodeCompressed4(b []byte, f *ringElement) []byte {
	for i := 0; i < n; i += 2 {
		b = append(b, byte(compress(f[i], 4)|compress(f[i+1], 4)<<4))
	}
	return b
}

// decodeDecompressed4 is Decompress_4(ByteDecode_4(b)) for len(b) = 128.
func decodeDecompressed4(b []byte) ringElement {
	var f ringElement
	for i := 0; i < n; i += 2 {
		f[i] = decompress(uint16(b[i/2]&0x0f), 4)
		f[i+1] = decompress(uint16(b[i/2]>>4), 4)
	}
	return f
}

// encodeCompressed1 appends ByteEncode_1(Compress_1(f)): the message bits.
func encodeCompressed1(b []byte, f *ringElement) []byte {
	for i := 0; i < n; i += 8 {
		var x byte
		for j := range 8 {
			x |= byte(compress(f[i+j], 1)) << j
		}
		b = append(b, x)
	}
	return b
}

// decodeDecompressed1 is Decompress_1(ByteDecode_1(m)): each bit becomes 0
// or ⌈q/2⌉ through a mask, never a branch on the secret bit.
func decodeDecompressed1(m []byte) ringElement {
	var f ringElement
	for i := range f {
		bit := uint16(m[i/8] >> (i % 8) & 1)
		f[i] = fieldElement(-bit & ((q + 1) / 2))
	}
	return f
}

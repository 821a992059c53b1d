// Package signalwire encodes and decodes the two message formats of the
// Signal protocol's one-to-one sessions as libsignal 0.103 writes them:
// SignalMessage and PreKeySignalMessage (rust/protocol/src/proto/wire.proto,
// proto2), each behind one version byte. It is hand-written, with no
// protobuf runtime.
//
// It is internal because it is not an API anyone should program against:
// a SignalMessage is only meaningful together with the MAC key and both
// identity keys that authenticate it, which the session layer holds. The
// session API over both protocols is the public surface; this package can be
// promoted later without breaking anyone.
//
// # Framing
//
//	SignalMessage       = 0x44 || protobuf || MAC (8 bytes)
//	PreKeySignalMessage = 0x44 || protobuf            (no MAC of its own)
//
// 0x44 is (version 4 << 4) | 4. The MAC is the first 8 bytes of
// HMAC-SHA256(mac key, IK_sender || IK_receiver || 0x44 || protobuf); this
// package places and splits it, the cipher suite computes it.
//
// # Strictness: one encoding per message
//
// libsignal decodes with prost, which skips unknown fields, lets a repeated
// field override the earlier one, accepts varints with redundant bytes,
// truncates out-of-range uint32 values, accepts any low nibble in the
// version byte and a high nibble of 3 or 4, and defaults missing
// registration_id and previous_counter to 0. libsignal's encoder, by
// contrast, always writes the same canonical form: fields in ascending
// order, each at most once, minimal varints, registration_id,
// signed_pre_key_id, counter and previous_counter always present,
// pq_ratchet only when non-empty.
//
// This package accepts exactly that canonical form and nothing else, so
// that Parse followed by Append reproduces the input byte for byte, and no
// two parsers can read one authenticated message two ways. The fields are
// checked in ascending order, which refuses duplicates and unknown fields
// alike; varints must be minimal and fit their type; every length is checked
// against the input before anything is sliced, and the parser allocates
// nothing beyond the message struct (byte fields alias the input). Keys must
// be 0x05 || canonical u (33 bytes; libsignal ignores trailing bytes), the
// Kyber ciphertext 0x08 || 1568 bytes, addresses exactly the 36 bytes
// libsignal writes (two 17-byte service ids, each with a device byte).
//
// What this refuses that libsignal accepts cannot come from libsignal: every
// such message either was never written by libsignal's encoder or, for the
// version byte, fails libsignal's own MAC check or version check later
// (testdata/libsignal records libsignal refusing 0x34, 0x43, 0x54 and
// 0x24). The cost is forward compatibility: a future libsignal that adds a
// field will be refused here until this package learns it, which the live
// interop run is there to catch.
package signalwire

#!/usr/bin/env python3
"""Recomputes the worked example in PROTOCOL.md, Appendix A.

A third, deliberately tiny, implementation of the profile's X3DH and first
ratchet messages, built only on Python's `cryptography` package. It is not
run by CI; it exists so that the numbers printed in PROTOCOL.md can be
checked by anyone without trusting either the Go or the JavaScript code.
Usage: python3 appendix_a.py
"""
import hashlib
import hmac
import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


def hkdf(salt, ikm, info, length):
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def priv(raw):
    return X25519PrivateKey.from_private_bytes(raw)


def pub(raw_priv):
    return priv(raw_priv).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def encode(raw_priv):
    return b"\x05" + pub(raw_priv)


def dh(raw_priv, encoded_pub):
    return priv(raw_priv).exchange(X25519PublicKey.from_public_bytes(encoded_pub[1:]))


def named_key(name):
    return hashlib.sha256(b"ratchetkit appendix A " + name.encode()).digest()


def kdf_rk(rk, dh_out):
    okm = hkdf(rk, dh_out, b"ratchetkit_Ratchet_v1", 64)
    return okm[:32], okm[32:]


def kdf_ck(ck):
    return hmac.new(ck, b"\x01", hashlib.sha256).digest(), hmac.new(ck, b"\x02", hashlib.sha256).digest()


def seal(mk, pt, ad):
    okm = hkdf(b"\x00" * 32, mk, b"ratchetkit_MessageKeys_AES-256-GCM_v1", 44)
    return okm, AESGCM(okm[:32]).encrypt(okm[32:], pt, ad)


def show(label, value):
    print(f"{label:<22} {value.hex()}")


# Inputs. The identity keys are the RFC 7748 section 6.1 key pairs.
ik_a = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
ik_b = bytes.fromhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
spk_b, opk_b, ek_a = named_key("SPK_B"), named_key("OPK_B"), named_key("EK_A")
dhs_a, dhs_b = named_key("DHs_A"), named_key("DHs_B")
spk_id, opk_id = 1, 7

print("# Inputs (private keys are raw, unclamped 32-byte strings)")
for name, k in [("IK_A", ik_a), ("IK_B", ik_b), ("SPK_B", spk_b), ("OPK_B", opk_b), ("EK_A", ek_a),
                ("DHs_A", dhs_a), ("DHs_B", dhs_b)]:
    show(name + ".priv", k)
    show("Encode(" + name + ")", encode(k))

print("# X3DH (Alice's view; Bob's mirrors it)")
dh1, dh2 = dh(ik_a, encode(spk_b)), dh(ek_a, encode(ik_b))
dh3, dh4 = dh(ek_a, encode(spk_b)), dh(ek_a, encode(opk_b))
assert dh1 == dh(spk_b, encode(ik_a)) and dh2 == dh(ik_b, encode(ek_a))
assert dh3 == dh(spk_b, encode(ek_a)) and dh4 == dh(opk_b, encode(ek_a))
for n, v in enumerate([dh1, dh2, dh3, dh4], 1):
    show(f"DH{n}", v)
sk = hkdf(b"\x00" * 32, b"\xff" * 32 + dh1 + dh2 + dh3 + dh4, b"ratchetkit_X3DH_X25519_SHA-256_v1", 32)
ad = encode(ik_a) + encode(ik_b)
show("SK", sk)
show("AD", ad)

print("# Alice's ratchet initialisation (DHr = SPK_B)")
rk, cks = kdf_rk(sk, dh(dhs_a, encode(spk_b)))
cks0 = cks
show("RK", rk)
show("CKs", cks)

print("# Alice's message 0, a prekey message")
mk, cks = kdf_ck(cks)
header = b"\x01" + encode(dhs_a) + struct.pack(">II", 0, 0)
okm, ct = seal(mk, b"Hello, Bob!", ad + header)
show("MK", mk)
show("next CKs", cks)
show("AES key", okm[:32])
show("GCM nonce", okm[32:])
show("header", header)
show("ct", ct)
prekey = b"\x02\x01" + encode(ik_a) + encode(ek_a) + struct.pack(">II", spk_id, opk_id) + header + ct
show("prekey message", prekey)

print("# Bob: receives it (DH step with DHs = SPK_B), then replies with DHs_B")
rk_b, ckr_b = kdf_rk(sk, dh(spk_b, encode(dhs_a)))
assert (rk_b, ckr_b) == (rk, cks0), "Bob's receiving chain must be Alice's sending chain"
rk_b, cks_b = kdf_rk(rk_b, dh(dhs_b, encode(dhs_a)))
show("RK", rk_b)
show("CKs", cks_b)
mk_b, _ = kdf_ck(cks_b)
header_b = b"\x01" + encode(dhs_b) + struct.pack(">II", 0, 0)
okm_b, ct_b = seal(mk_b, b"Hi Alice", ad + header_b)
show("MK", mk_b)
show("AES key", okm_b[:32])
show("GCM nonce", okm_b[32:])
show("reply message", header_b + ct_b)

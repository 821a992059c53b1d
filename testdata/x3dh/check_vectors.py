#!/usr/bin/env python3
"""Re-derive testdata/x3dh/vectors.json without ratchetkit's code.

X25519 and HKDF come from the `cryptography` package; XEdDSA signing and
verification are written out below on plain integers, from the XEdDSA
specification (rev. 1) and profile v1's stricter verification rules. Run:

    python3 testdata/x3dh/check_vectors.py [path/to/vectors.json]

It is not part of `go test`; it exists so that the vectors are checked by a
second, unrelated implementation. Exit status 0 means every case matched.
"""

import hashlib
import json
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

P = 2**255 - 19
Q = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def inv(x):
    return pow(x, P - 2, P)


def recover_x(y, sign):
    """x with the given sign bit on -x^2 + y^2 = 1 + d x^2 y^2, or None."""
    xx = (y * y - 1) * inv(D * y * y + 1) % P
    x = pow(xx, (P + 3) // 8, P)
    if (x * x - xx) % P != 0:
        x = x * SQRT_M1 % P
    if (x * x - xx) % P != 0:
        return None
    if x == 0 and sign:
        return None
    if x & 1 != sign:
        x = P - x
    return x


def add(a, b):
    (x1, y1), (x2, y2) = a, b
    t = D * x1 * x2 * y1 * y2 % P
    return ((x1 * y2 + x2 * y1) * inv(1 + t) % P, (y1 * y2 + x1 * x2) * inv(1 - t) % P)


def mul(k, pt):
    acc, cur = (0, 1), pt
    while k:
        if k & 1:
            acc = add(acc, cur)
        cur = add(cur, cur)
        k >>= 1
    return acc


def enc_point(pt):
    x, y = pt
    return (y | (x & 1) << 255).to_bytes(32, "little")


BY = 4 * inv(5) % P
BASE = (recover_x(BY, 0), BY)


def clamp(k):
    k = bytearray(k)
    k[0] &= 248
    k[31] &= 127
    k[31] |= 64
    return bytes(k)


def h512(*parts):
    return int.from_bytes(hashlib.sha512(b"".join(parts)).digest(), "little")


PREFIX1 = b"\xfe" + b"\xff" * 31


def sign_spec(k, msg, z):
    kc = int.from_bytes(clamp(k), "little")
    E = mul(kc, BASE)
    a = (-kc if E[0] & 1 else kc) % Q
    Eb = enc_point(E)
    A = Eb[:31] + bytes([Eb[31] & 0x7F])  # E with its sign bit cleared
    r = h512(PREFIX1, a.to_bytes(32, "little"), msg, z) % Q
    R = enc_point(mul(r, BASE))
    h = h512(R, A, msg) % Q
    return R + ((r + h * a) % Q).to_bytes(32, "little")


def sign_libsignal(k, msg, z):
    kcb = clamp(k)
    kc = int.from_bytes(kcb, "little")
    A = enc_point(mul(kc, BASE))
    r = h512(PREFIX1, kcb, msg, z) % Q
    R = enc_point(mul(r, BASE))
    h = h512(R, A, msg) % Q
    s = bytearray(((r + h * kc) % Q).to_bytes(32, "little"))
    s[31] |= A[31] & 0x80
    return R + bytes(s)


def verify(u_bytes, msg, sig):
    """Profile v1 XEdDSA verification (strict)."""
    if len(u_bytes) != 32 or len(sig) != 64:
        return False
    u = int.from_bytes(u_bytes, "little")
    if u >= P or u == P - 1:
        return False
    sign = sig[63] >> 7
    s = int.from_bytes(sig[32:63] + bytes([sig[63] & 0x7F]), "little")
    if s >= Q:
        return False
    y = (u - 1) * inv(u + 1) % P
    x = recover_x(y, sign)
    if x is None:
        return False
    A = (x, y)
    if mul(8, A) == (0, 1):
        return False
    h = h512(sig[:32], enc_point(A), msg) % Q
    R = add(mul(s, BASE), mul((Q - h) % Q, A))
    return enc_point(R) == sig[:32]


def x25519_pub(priv):
    return b"\x05" + X25519PrivateKey.from_private_bytes(priv).public_key().public_bytes_raw()


def dh(priv, pub33):
    """X25519; None for an all-zero output (cryptography refuses it)."""
    try:
        return X25519PrivateKey.from_private_bytes(priv).exchange(X25519PublicKey.from_public_bytes(pub33[1:]))
    except ValueError:
        return None


def hkdf(ikm, info):
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"\x00" * 32, info=info).derive(ikm)


def decodes(k):
    return len(k) == 33 and k[0] == 5 and int.from_bytes(k[1:], "little") < P


def small_order(k):
    return dh(b"\x42" * 32, k) is None


def u32(v):
    return v.to_bytes(4, "big")


def b(x):
    return None if x is None else bytes.fromhex(x)


class Failure(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise Failure(what)


def check_valid(c):
    al, bo = c["alice"], c["bob"]
    for who, priv, pub in [("alice ik", al["ik_priv"], al["ik_pub"]), ("alice ek", al["ek_priv"], al["ek_pub"]),
                           ("bob ik", bo["ik_priv"], bo["ik_pub"]), ("bob spk", bo["spk_priv"], bo["spk_pub"])] + \
            ([("bob opk", bo["opk_priv"], bo["opk_pub"])] if bo["opk_id"] is not None else []):
        expect(x25519_pub(b(priv)) == b(pub), who + " public key")
    sig = c["spk_sig"]
    signer = {"spec": sign_spec, "libsignal": sign_libsignal}[sig["style"]]
    expect(signer(b(bo["ik_priv"]), b(sig["msg"]), b(sig["z"])) == b(sig["sig"]), "signature re-made from z")
    expect(b(sig["msg"]) == b(bo["spk_pub"]), "signature message is Encode(SPK_B)")
    expect(verify(b(bo["ik_pub"])[1:], b(sig["msg"]), b(sig["sig"])), "signature verifies")
    if sig["style"] == "spec":
        expect(b(sig["sig"])[63] & 0x80 == 0, "spec signature top bit")

    alice_dh = [dh(b(al["ik_priv"]), b(bo["spk_pub"])), dh(b(al["ek_priv"]), b(bo["ik_pub"])),
                dh(b(al["ek_priv"]), b(bo["spk_pub"]))]
    bob_dh = [dh(b(bo["spk_priv"]), b(al["ik_pub"])), dh(b(bo["ik_priv"]), b(al["ek_pub"])),
              dh(b(bo["spk_priv"]), b(al["ek_pub"]))]
    if bo["opk_id"] is not None:
        alice_dh.append(dh(b(al["ek_priv"]), b(bo["opk_pub"])))
        bob_dh.append(dh(b(bo["opk_priv"]), b(al["ek_pub"])))
    expect(alice_dh == bob_dh, "both sides' DH outputs")
    listed = [b(c["dh1"]), b(c["dh2"]), b(c["dh3"])] + ([b(c["dh4"])] if bo["opk_id"] is not None else [])
    expect(alice_dh == listed, "dh1..dh4")
    expect(c["dh4"] is None or bo["opk_id"] is not None, "dh4 without a one-time prekey")
    ikm = b"\xff" * 32 + b"".join(alice_dh)
    expect(ikm == b(c["kdf_ikm"]), "kdf_ikm")
    expect(b(c["kdf_salt"]) == b"\x00" * 32, "kdf_salt")
    expect(hkdf(ikm, b(c["info"])) == b(c["sk"]), "sk")
    expect(b(al["ik_pub"]) + b(bo["ik_pub"]) == b(c["ad"]), "ad")

    opk = bo["opk_id"] is not None
    bundle = bytes([1, int(opk)]) + b(bo["ik_pub"]) + u32(bo["spk_id"]) + b(bo["spk_pub"]) + b(sig["sig"])
    header = bytes([int(opk)]) + b(al["ik_pub"]) + b(al["ek_pub"]) + u32(bo["spk_id"])
    if opk:
        bundle += u32(bo["opk_id"]) + b(bo["opk_pub"])
        header += u32(bo["opk_id"])
    expect(bundle == b(c["bundle"]), "bundle encoding")
    expect(header == b(c["header"]), "header encoding")


def initiate_error(c):
    bd = c["bundle"]
    keys = [b(bd["ik"]), b(bd["spk"])] + ([b(bd["opk"])] if bd["opk_id"] is not None else [])
    if not all(decodes(k) for k in keys):
        return "bad_key"
    if any(small_order(k) for k in keys):
        return "bad_key"
    if not verify(b(bd["ik"])[1:], b(bd["spk"]), b(bd["spk_sig"])):
        return "invalid_signature"
    return None


def respond(c):
    bo, h = c["bob"], c["header"]
    if bo["spk_id"] != h["spk_id"] or (bo["opk_id"] is None) != (h["opk_id"] is None) or \
            (bo["opk_id"] is not None and bo["opk_id"] != h["opk_id"]):
        return "prekey_mismatch", None
    if small_order(b(h["ik"])) or small_order(b(h["ek"])):
        return "bad_key", None
    ikm = b"\xff" * 32 + dh(b(bo["spk_priv"]), b(h["ik"])) + dh(b(bo["ik_priv"]), b(h["ek"])) + \
        dh(b(bo["spk_priv"]), b(h["ek"]))
    if bo["opk_id"] is not None:
        ikm += dh(b(bo["opk_priv"]), b(h["ek"]))
    return None, hkdf(ikm, b(c["info"]))


def parse(data, kind):
    """Returns an error kind or None."""
    if kind == "bundle":
        if len(data) < 2 or data[0] != 1:
            return "malformed"
        flags, off, n = data[1], 2, 136
    else:
        if len(data) < 1:
            return "malformed"
        flags, off, n = data[0], 1, 71
    if flags & 0xFE:
        return "malformed"
    n += (37 if kind == "bundle" else 4) * (flags & 1)
    if len(data) != n if kind == "bundle" else len(data) < n:
        return "malformed"
    if kind == "bundle":
        keys = [data[2:35], data[39:72]] + ([data[140:173]] if flags & 1 else [])
    else:
        keys = [data[1:34], data[34:67]]
    return None if all(decodes(k) for k in keys) else "bad_key"


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "testdata/x3dh/vectors.json"
    with open(path) as f:
        v = json.load(f)
    expect(b(v["default_info"]) == b"ratchetkit_X3DH_X25519_SHA-256_v1", "default info")
    failures = 0
    for c in v["valid"]:
        try:
            check_valid(c)
        except Failure as e:
            failures += 1
            print("FAIL valid/%s: %s" % (c["name"], e))
    for c in v["invalid"]:
        want, op = c["error"], c["op"]
        if op == "initiate":
            got = initiate_error(c)
        elif op == "respond":
            got, sk = respond(c)
            if want is None and got is None and (sk != b(c["sk"]) or sk == b(c["initiator_sk"])):
                got = "wrong sk"
        else:
            got = parse(b(c["bytes"]), op[len("parse_"):])
        if got != want:
            failures += 1
            print("FAIL invalid/%s: got %s, want %s" % (c["name"], got, want))
    print("%d valid, %d invalid cases, %d failures" % (len(v["valid"]), len(v["invalid"]), failures))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

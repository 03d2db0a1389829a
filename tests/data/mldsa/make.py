#!/usr/bin/env python3
"""Makes the ML-DSA test fixtures in this directory (needs no OpenSSL 3.5).

    python3 -m venv /tmp/mldsa-venv
    /tmp/mldsa-venv/bin/pip install 'cryptography>=50' dilithium-py
    /tmp/mldsa-venv/bin/python tests/data/mldsa/make.py

pyca `cryptography` makes the keys (from fixed seeds, so reruns give the same files), a CA
and a leaf certificate per size, the seed-only PKCS#8 key and an AES-256-CBC encrypted one.
dilithium-py derives the expanded key from the seed, from which the expanded-only and "both"
(OpenSSL 3.5's default) encodings are assembled by hand. `kat.json` holds a deterministic
signature over a fixed message, made by dilithium-py (pure ML-DSA, empty context,
deterministic) and verified here by pyca `cryptography`.
"""
import datetime
import json
import os

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import mldsa
from cryptography.x509.oid import NameOID
from dilithium_py.ml_dsa import ML_DSA_44, ML_DSA_65, ML_DSA_87

HERE = os.path.dirname(os.path.abspath(__file__))
SIZES = {
    44: (mldsa.MLDSA44PrivateKey, ML_DSA_44, "2.16.840.1.101.3.4.3.17"),
    65: (mldsa.MLDSA65PrivateKey, ML_DSA_65, "2.16.840.1.101.3.4.3.18"),
    87: (mldsa.MLDSA87PrivateKey, ML_DSA_87, "2.16.840.1.101.3.4.3.19"),
}
NOT_BEFORE = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
NOT_AFTER = datetime.datetime(2045, 1, 1, tzinfo=datetime.timezone.utc)
KAT_MESSAGE = b"AWS4-X509-MLDSA\n20250101T000000Z\n20250101/us-east-1/rolesanywhere/aws4_request\n" + b"0" * 64


def der_len(n):
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag, body):
    return bytes([tag]) + der_len(len(body)) + body


def oid_der(dotted):
    parts = [int(p) for p in dotted.split(".")]
    out = bytes([parts[0] * 40 + parts[1]])
    for p in parts[2:]:
        chunk = [p & 0x7F]
        p >>= 7
        while p:
            chunk.append(0x80 | (p & 0x7F))
            p >>= 7
        out += bytes(reversed(chunk))
    return tlv(0x06, out)


def pkcs8(oid, inner):
    """PrivateKeyInfo { version 0, AlgorithmIdentifier { oid } (no parameters), OCTET STRING inner }."""
    return tlv(0x30, tlv(0x02, b"\x00") + tlv(0x30, oid_der(oid)) + tlv(0x04, inner))


def pem(label, der):
    import base64
    b = base64.b64encode(der).decode()
    lines = [b[i:i + 64] for i in range(0, len(b), 64)]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n"


def write(name, data):
    mode = "w" if isinstance(data, str) else "wb"
    with open(os.path.join(HERE, name), mode) as f:
        f.write(data)


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def main():
    kat = {}
    for size, (cls, dil, oid) in SIZES.items():
        ca_key = cls.from_seed_bytes(bytes([0xC0 + size % 16]) * 32)
        seed = bytes((size + i) % 256 for i in range(32))
        key = cls.from_seed_bytes(seed)
        ca = (
            x509.CertificateBuilder()
            .subject_name(name(f"ML-DSA-{size} test CA"))
            .issuer_name(name(f"ML-DSA-{size} test CA"))
            .public_key(ca_key.public_key())
            .serial_number(1000 + size)
            .not_valid_before(NOT_BEFORE)
            .not_valid_after(NOT_AFTER)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .sign(ca_key, None)
        )
        leaf = (
            x509.CertificateBuilder()
            .subject_name(name(f"ML-DSA-{size} test leaf"))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(2000 + size)
            .not_valid_before(NOT_BEFORE)
            .not_valid_after(NOT_AFTER)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
            .sign(ca_key, None)
        )
        write(f"mldsa{size}-ca.pem", ca.public_bytes(serialization.Encoding.PEM).decode())
        write(f"mldsa{size}-cert.pem", leaf.public_bytes(serialization.Encoding.PEM).decode())
        seed_der = key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        assert seed_der == pkcs8(oid, tlv(0x80, seed)), "pyca's seed-only encoding changed"
        write(f"mldsa{size}-seed.pem", pem("PRIVATE KEY", seed_der))
        write(
            f"mldsa{size}-seed-aes256.pem",
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"password"),
            ).decode(),
        )
        pk, sk = dil.key_derive(seed)
        assert pk == key.public_key().public_bytes_raw(), "dilithium-py and pyca disagree"
        write(f"mldsa{size}-expanded.pem", pem("PRIVATE KEY", pkcs8(oid, tlv(0x04, sk))))
        both = tlv(0x30, tlv(0x04, seed) + tlv(0x04, sk))
        write(f"mldsa{size}-both.pem", pem("PRIVATE KEY", pkcs8(oid, both)))
        # A "both" key whose expanded half is another seed's.
        _, other_sk = dil.key_derive(bytes(32))
        bad = tlv(0x30, tlv(0x04, seed) + tlv(0x04, other_sk))
        write(f"mldsa{size}-both-mismatch.pem", pem("PRIVATE KEY", pkcs8(oid, bad)))
        sig = dil.sign(sk, KAT_MESSAGE, ctx=b"", deterministic=True)
        key.public_key().verify(sig, KAT_MESSAGE)
        kat[f"ML-DSA-{size}"] = {"seed": seed.hex(), "signature": sig.hex()}
    kat["message"] = KAT_MESSAGE.hex()
    write("kat.json", json.dumps(kat, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()

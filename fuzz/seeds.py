#!/usr/bin/env python3
"""Writes the hand-made seed corpus under fuzz/corpus/ (committed; rerun only to change it).

Seeds are valid inputs, so the fuzzer starts past the signature checks and the parsers' happy
paths. Binary seeds are signed with the fixtures' keys of fuzz/src/lib.rs (Ed25519 seeds [1]*32
for the root key, [2]*32 for the device, [9]*32 for the session key), which is why this needs
Python's `cryptography` package; protobuf is encoded by hand (a few fields, no protoc).
"""

import base64
import json
import pathlib
import uuid

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

NOW = 1_800_000_000
ME = "https://a.example"
CORPUS = pathlib.Path(__file__).resolve().parent / "corpus"
SEP = b"\xff"  # field separator of the multi-field targets (mzchat_fuzz::fields)


def key(seed):
    return Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)


def public(k):
    return k.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


ROOT, DEVICE, SESSION = key(1), key(2), key(9)
USER_ID = b64(public(ROOT))


# Protobuf wire format: varint (type 0) and length-delimited (type 2) fields are all we need.
def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number, value):
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    if isinstance(value, str):
        value = value.encode()
    return varint(number << 3 | 2) + varint(len(value)) + value


def timestamp(seconds):
    return field(1, seconds)


def statement(signer, ty, body):
    signature = signer.sign(b"mzchat/v1/" + ty.encode() + b"\0" + body)
    return field(1, body) + field(2, signature)


def write(target, name, data):
    path = CORPUS / target / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())


def signed_statement():
    cert = (field(1, USER_ID) + field(2, "laptop") + field(3, public(DEVICE)) + field(4, ME)
            + field(5, timestamp(NOW - 60)) + field(6, timestamp(NOW + 86_400)))
    proof = field(1, ME) + field(2, "laptop") + field(3, timestamp(NOW)) + field(4, bytes([7]) * 16)
    revocation = field(1, USER_ID) + field(2, "laptop") + field(3, timestamp(NOW - 10))
    # The target's first byte picks the type (mod 4: certificate, revocation, proof); the body
    # follows. A whole signed statement starts with a protobuf tag, whose value mod 4 is its wire
    # type: an unknown leading field of the right wire type (0 varint, 5 fixed32) picks the type
    # and is skipped when decoding; the proof's own first tag (LEN) already picks it.
    write("signed_statement", "certificate-body", b"\x00" + cert)
    write("signed_statement", "certificate-signed",
          b"\x18\x00" + statement(ROOT, "device-certificate", cert))
    write("signed_statement", "revocation-body", b"\x01" + revocation)
    write("signed_statement", "revocation-signed",
          b"\x1d\x00\x00\x00\x00" + statement(ROOT, "device-revocation", revocation))
    write("signed_statement", "proof-body", b"\x02" + proof)
    write("signed_statement", "proof-signed", statement(DEVICE, "login-proof", proof))


def migration_proof():
    signature = ROOT.sign(f"{ME}|{NOW}".encode())
    base = field(1, ME) + field(2, NOW) + field(3, signature)
    targets = [field(4, t) for t in ("https://old.example", "HTTPS://A.example:443",
                                     "http://127.0.0.1:7600", "https://[::1]:8443")]
    write("migration_proof", "no-targets", base)
    write("migration_proof", "targets", base + b"".join(targets))


def origin():
    for name, text in [("plain", "https://chat.example.org"),
                       ("mixed-case-port", "HTTPS://Chat.Example.ORG:8443"),
                       ("default-port", "https://a.example:443"),
                       ("http-dev", "http://127.0.0.1:7600"),
                       ("ipv6", "https://[::1]:7600")]:
        write("origin", name, text)


def invite_link():
    guild, channel = uuid.UUID(int=1), uuid.UUID(int=2)
    write("invite_link", "link", f"https://Chat.Example.org/channels/{guild}/{channel}?token=AbC123xyz0"
          .encode() + SEP + b"https://b.example:8443\x00\x01" + bytes(range(32)) + b"AbCdEf1234")
    write("invite_link", "http-dev", b"http://127.0.0.1:7600/channels/g/c?token=0123456789" + SEP)
    write("invite_link", "token", b"AbCdEf1234")


def session_token():
    guild, role = uuid.UUID(int=7), uuid.UUID(int=8)
    compact = lambda u: b64(u.bytes)
    header = json.dumps({"alg": "EdDSA", "typ": "JWT", "kid": "k1"}, separators=(",", ":"))
    claims = json.dumps({
        "iss": ME, "sub": USER_ID, "did": "laptop", "iat": NOW - 60, "exp": NOW + 3600,
        "jti": "j1", "home": ME,
        "guild_roles": {compact(guild): [compact(role)]},
        "permission_versions_by_guild": {compact(guild): 3},
    }, separators=(",", ":"))
    signed = b64(header.encode()) + "." + b64(claims.encode())
    token = signed + "." + b64(SESSION.sign(signed.encode()))
    fields = [token, header, claims, "Bearer " + token]
    write("session_token", "valid", SEP.join(f.encode() for f in fields) + SEP + bytes(range(64)))
    write("session_token", "expired-other-issuer", SEP.join([
        b"", header.encode(), claims.replace(ME, "https://b.example").encode(), b"Bearer x"]))


def push_endpoint():
    for name, text in [("https", "https://push.example.org/up/abc?x=1"),
                       ("ntfy", "https://ntfy.example/mzchat-AbC?up=1"),
                       ("allow-listed-http", "http://127.0.0.1:9999/up"),
                       ("ipv6-literal", "https://[2001:db8::1]:8443/up"),
                       ("private", "https://10.1.2.3/up")]:
        write("push_endpoint", name, text)


if __name__ == "__main__":
    for make in (signed_statement, migration_proof, origin, invite_link, session_token,
                 push_endpoint):
        make()

"""OpenSSH public key lines (`type base64-blob [comment]`), checked inside the blob.

The blob is the key in SSH wire format (RFC 4253 section 6.6): length-prefixed fields, the
first of which repeats the key type. A line whose blob does not decode, names another type or
is cut short (`ssh-ed25519 AAAA`) would be written to authorized_keys and never let anyone in.
"""

from __future__ import annotations

import base64
import binascii

# Key type -> how many length-prefixed fields its blob holds, the type string included.
KEY_FIELDS = {
    "ssh-ed25519": 2,  # type, 32-byte key
    "ssh-rsa": 3,  # type, e, n
    "ecdsa-sha2-nistp256": 3,  # type, curve, point
    "ecdsa-sha2-nistp384": 3,
    "ecdsa-sha2-nistp521": 3,
    "sk-ssh-ed25519@openssh.com": 3,  # type, key, application
    "sk-ecdsa-sha2-nistp256@openssh.com": 4,  # type, curve, point, application
}


def _fields(blob: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(blob):
        if pos + 4 > len(blob):
            raise ValueError("truncated")
        size = int.from_bytes(blob[pos : pos + 4], "big")
        pos += 4
        if pos + size > len(blob):
            raise ValueError("truncated")
        out.append(blob[pos : pos + size])
        pos += size
    return out


def public_key(line: str) -> str:
    """The key line, stripped, if it is a whole OpenSSH public key."""
    parts = line.strip().split(None, 2)
    if len(parts) < 2 or parts[0] not in KEY_FIELDS:
        raise ValueError(
            f"is not an OpenSSH public key line ('ssh-ed25519 AAAA... comment'; types: "
            f"{', '.join(KEY_FIELDS)})"
        )
    kind, text = parts[0], parts[1]
    try:
        fields = _fields(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError):
        fields = []
    if not fields or fields[0] != kind.encode() or len(fields) != KEY_FIELDS[kind]:
        raise ValueError(
            f"is not an OpenSSH public key: the {kind} key data is cut short or damaged (copy the whole .pub line)"
        )
    if kind == "ssh-ed25519" and len(fields[1]) != 32:
        raise ValueError("is not an OpenSSH public key: an ed25519 key is 32 bytes")
    return line.strip()

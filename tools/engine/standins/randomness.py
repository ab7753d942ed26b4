"""Stand-in for pulumi-random 4.21.4: random bytes, ids and passwords from `secrets`.

As in the provider (hashicorp/terraform-provider-random, bridged), every input of these
resources replaces them, `keepers` included, and the id of RandomBytes and RandomPassword
is "none".
"""

from __future__ import annotations

import base64
import datetime
import secrets
import string
import warnings
from typing import Any

from .schema import Package, Prop, ResourceType

VERSION = "4.21.4"

DEFAULT_SPECIAL = "!@#$%&*()-_=+[]{}<>:?"
BCRYPT_COST = 10  # the provider's (Go's bcrypt.DefaultCost)


def create_bytes(inputs: dict[str, Any], _now: datetime.datetime):
    data = secrets.token_bytes(inputs["length"])
    return "none", {"base64": base64.b64encode(data).decode(), "hex": data.hex()}


def create_id(inputs: dict[str, Any], _now: datetime.datetime):
    data = secrets.token_bytes(inputs["byteLength"])
    prefix = inputs.get("prefix", "")
    url = base64.urlsafe_b64encode(data).decode().rstrip("=")
    outputs = {
        "b64Url": prefix + url,
        "b64Std": prefix + base64.b64encode(data).decode(),
        "hex": prefix + data.hex(),
        "dec": prefix + str(int.from_bytes(data, "big")),
    }
    # The provider's id is the URL-safe base64 without the prefix.
    return url, outputs


def _classes(inputs: dict[str, Any]) -> list[tuple[str, int]]:
    """(alphabet, minimum count) of every enabled character class."""
    classes = [
        ("upper", string.ascii_uppercase, "minUpper"),
        ("lower", string.ascii_lowercase, "minLower"),
        ("numeric", string.digits, "minNumeric"),
        ("special", inputs.get("overrideSpecial") or DEFAULT_SPECIAL, "minSpecial"),
    ]
    return [(chars, inputs.get(low, 0)) for flag, chars, low in classes if inputs.get(flag, True)]


def password(inputs: dict[str, Any]) -> str:
    classes = _classes(inputs)
    chosen = [secrets.choice(chars) for chars, low in classes for _ in range(low)]
    everything = "".join(chars for chars, _ in classes)
    chosen += [secrets.choice(everything) for _ in range(inputs["length"] - len(chosen))]
    # Shuffle so the required characters are not all at the front.
    for i in range(len(chosen) - 1, 0, -1):
        j = secrets.randbelow(i + 1)
        chosen[i], chosen[j] = chosen[j], chosen[i]
    return "".join(chosen)


def bcrypt_hash(text: str) -> str:
    # The standard library's crypt (libcrypt's bcrypt): no extra dependency for one hash.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt

    if crypt.METHOD_BLOWFISH not in crypt.methods:
        raise ValueError("bcryptHash: this system's libcrypt has no bcrypt")
    return crypt.crypt(text, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=2**BCRYPT_COST))


def create_password(inputs: dict[str, Any], _now: datetime.datetime):
    result = password(inputs)
    return "none", {"result": result, "bcryptHash": bcrypt_hash(result)}


def password_rules(inputs: dict[str, Any]) -> list[tuple[str, str]]:
    if "length" not in inputs:
        return []
    wanted = sum(inputs.get(k, 0) for k in ("minUpper", "minLower", "minNumeric", "minSpecial"))
    if inputs["length"] < wanted:
        return [("length", f"length ({inputs['length']}) is less than the min_* counts ({wanted})")]
    if not _classes(inputs):
        return [("special", "upper, lower, numeric and special are all false: no characters")]
    return []


def numeric_alias(inputs: dict[str, Any]) -> list[tuple[str, str]]:
    # The provider keeps the deprecated `number` in step with `numeric`; here it may only
    # repeat it.
    if "number" in inputs and inputs["number"] != inputs.get("numeric", True):
        return [("number", "number is deprecated: set numeric (and not number) instead")]
    return password_rules(inputs)


KEEPERS = Prop("keepers", "map")

PACKAGE = Package(
    name="random",
    version=VERSION,
    resources={
        r.token: r
        for r in (
            ResourceType(
                token="random:index/randomBytes:RandomBytes",
                props=(Prop("length", "int", required=True, minimum=1), KEEPERS),
                outputs=("base64", "hex"),
                secret_outputs=frozenset({"base64", "hex"}),
                create=create_bytes,
            ),
            ResourceType(
                token="random:index/randomId:RandomId",
                props=(
                    Prop("byteLength", "int", required=True, minimum=1),
                    Prop("prefix", "string"),
                    KEEPERS,
                ),
                outputs=("b64Url", "b64Std", "hex", "dec"),
                secret_outputs=frozenset(),
                create=create_id,
            ),
            ResourceType(
                token="random:index/randomPassword:RandomPassword",
                props=(
                    Prop("length", "int", required=True, minimum=1),
                    Prop("special", "bool", default=True),
                    Prop("upper", "bool", default=True),
                    Prop("lower", "bool", default=True),
                    Prop("numeric", "bool", default=True),
                    Prop("number", "bool"),
                    Prop("minUpper", "int", default=0, minimum=0),
                    Prop("minLower", "int", default=0, minimum=0),
                    Prop("minNumeric", "int", default=0, minimum=0),
                    Prop("minSpecial", "int", default=0, minimum=0),
                    Prop("overrideSpecial", "string"),
                    KEEPERS,
                ),
                outputs=("result", "bcryptHash"),
                secret_outputs=frozenset({"result", "bcryptHash"}),
                create=create_password,
                rules=numeric_alias,
            ),
        )
    },
)

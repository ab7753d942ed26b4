"""Resource types as data: their inputs (type, default, whether a change replaces), their
computed outputs, and the function that makes the outputs from the inputs.

Check, Diff, Create and Update are written once (provider.py) over these descriptions.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Clock = Callable[[], datetime.datetime]

# kind -> (Python types a known value may have, how a failure names the kind)
KINDS: dict[str, tuple[tuple[type, ...], str]] = {
    "string": ((str,), "a string"),
    "int": ((int,), "a whole number"),
    "bool": ((bool,), "true or false"),
    "strings": ((list,), "a list of strings"),
    "list": ((list,), "a list"),
    "map": ((dict,), "a map"),
}


@dataclass(frozen=True)
class Prop:
    """One input property, named as the Python SDK sends it (camelCase)."""

    name: str
    kind: str
    required: bool = False
    default: Any = None
    # What the real provider does when the value changes: replace the resource, or update it.
    replace: bool = True
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    # PEM text: compared without surrounding whitespace, as the tls provider does.
    pem: bool = False
    # Accepted by the SDK class but not implemented by the stand-in: refused by Check.
    unsupported: bool = False

    def problem(self, value: Any) -> str | None:
        """Why a known, present value is invalid, or None."""
        if self.unsupported:
            return f"{self.name} is not supported by this stand-in provider"
        types, what = KINDS[self.kind]
        if not isinstance(value, types) or (self.kind == "int" and isinstance(value, bool)):
            return f"{self.name} must be {what}, not {value!r}"
        if self.kind == "strings":
            bad = [v for v in value if not isinstance(v, str)]
            if bad:
                return f"{self.name} must be a list of strings, not {bad[0]!r} in it"
            return self._choice_problem(value)
        if self.minimum is not None and value < self.minimum:
            return f"{self.name} must be at least {self.minimum}, not {value}"
        return self._choice_problem([value] if self.kind == "string" else [])

    def _choice_problem(self, values: list) -> str | None:
        bad = [v for v in values if self.choices and v not in self.choices]
        if bad:
            return f"{self.name}: {bad[0]!r} is not one of {', '.join(self.choices)}"
        return None

    def same(self, old: Any, new: Any) -> bool:
        if self.pem and isinstance(old, str) and isinstance(new, str):
            return old.strip() == new.strip()
        return old == new


def no_rules(_inputs: dict[str, Any]) -> list[tuple[str, str]]:
    return []


def nothing_due(_state: dict[str, Any], _news: dict[str, Any], _now: datetime.datetime) -> list:
    return []


def nothing_to_recompute(_state: dict[str, Any], _now: datetime.datetime) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class ResourceType:
    token: str
    props: tuple[Prop, ...]
    # Computed outputs (the inputs are outputs too, as the state of every Pulumi resource).
    outputs: tuple[str, ...]
    secret_outputs: frozenset[str]
    # (known inputs without secret wrappers, now) -> (id, computed outputs)
    create: Callable[[dict[str, Any], datetime.datetime], tuple[str, dict[str, Any]]]
    # Rules across properties over the known inputs: [(property, reason)].
    rules: Callable[[dict[str, Any]], list[tuple[str, str]]] = no_rules
    # (state, new inputs, now) -> names of outputs whose state forces a replacement now
    # (a certificate in its renewal window).
    due: Callable[[dict[str, Any], dict[str, Any], datetime.datetime], list[str]] = nothing_due
    # (state after an in-place update, now) -> outputs to recompute.
    recompute: Callable[[dict[str, Any], datetime.datetime], dict[str, Any]] = nothing_to_recompute
    by_name: dict[str, Prop] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {p.name: p for p in self.props})


@dataclass(frozen=True)
class Package:
    """A provider plugin: its package name, the version it answers for, its resource types."""

    name: str
    version: str
    resources: dict[str, ResourceType]

"""The OpenStack bridge's token map, derived at build time (tools/real-engine.sh runs this).

The bridged provider must answer to exactly the type tokens the installed `pulumi_openstack`
Python SDK sends. Those tokens come from the SDK's source; the Terraform resource and data
source names from the pinned Terraform provider (`tfnames`, a Go command beside the bridge).
They are matched by name, never listed by hand:

1. a Terraform name loses `openstack_` and its `_vN` suffix and splits into module and rest
   (`openstack_lb_pool_v2` -> `lb`, `pool`); a token loses a data source's `get` and a `VN`
   suffix (`loadbalancer/getPoolV2` -> `loadbalancer`, `pool`); both compare case- and
   underscore-insensitively;
2. tier 1: same module and name (an `index` token: its name is the whole Terraform name);
3. tier 2: same name, the Terraform module an abbreviation of the token's (`lb` ->
   `loadbalancer`, `db` -> `database`, `fw` -> `firewall`: same first letter, letters in order);
4. tier 3: a module left with exactly one unmatched token and one Terraform name without a
   token pairs them (the SDK's own spellings: `blockstorage/quoteSetV3`).

Every token must find exactly one Terraform name and every Terraform name at least one token
(the SDK keeps a deprecated second token for a few); anything else fails the build with the
names that did not match. Non-tier-1 pairs are printed so a build log shows them.

    python -m tools.engine.openstack_tokens TFNAMES_JSON OUT_GO
    python -m tools.engine.openstack_tokens --check PROVIDER_BINARY VERSION   # after the build
"""

from __future__ import annotations

import ast
import json
import pathlib
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass

# Calls through which the SDK sends a data source (function) token.
INVOKE_CALLS = {"invoke", "invoke_output", "invoke_async", "invoke_output_async"}


class TokenMapError(Exception):
    """The SDK's tokens and the Terraform provider's names do not pair up."""


def sdk_tokens(package_dir: pathlib.Path) -> tuple[set[str], set[str]]:
    """(resource tokens, data source tokens) the Python SDK under package_dir sends."""
    resources: set[str] = set()
    functions: set[str] = set()
    for path in sorted(package_dir.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if not (node.args and isinstance(node.args[0], ast.Constant)):
                continue
            token = node.args[0].value
            if not (isinstance(token, str) and token.startswith("openstack:")):
                continue
            if node.func.attr == "__init__":  # super().__init__('openstack:mod/x:X', ...)
                resources.add(token)
            elif node.func.attr in INVOKE_CALLS:
                functions.add(token)
    return resources, functions


def _norm(text: str) -> str:
    return text.replace("_", "").lower()


@dataclass(frozen=True)
class TfName:
    name: str
    module: str
    rest: str

    @classmethod
    def parse(cls, name: str) -> TfName:
        body = re.sub(r"_v\d+$", "", name.removeprefix("openstack_"))
        module, _, rest = body.partition("_")
        return cls(name, _norm(module), _norm(rest))


@dataclass(frozen=True)
class Token:
    token: str
    module: str
    name: str

    @classmethod
    def parse(cls, token: str, function: bool) -> Token:
        _, member, name = token.split(":")
        if function:
            name = re.sub(r"^get(?=[A-Z])", "", name)
        name = re.sub(r"V\d+$", "", name)
        return cls(token, member.split("/")[0].lower(), _norm(name))


def _abbreviates(short: str, long: str) -> bool:
    if not short or short[0] != long[0]:
        return False
    letters = iter(long)
    return all(ch in letters for ch in short)


def _module_rank(tf: TfName, tok: Token, token_modules: set[str]) -> int | None:
    """0: the same module; 1: the Terraform module abbreviates the token's; None: neither."""
    if tf.module == tok.module:
        return 0
    if tf.module not in token_modules and _abbreviates(tf.module, tok.module):
        return 1
    return None


def _tier(tf: TfName, tok: Token, token_modules: set[str]) -> int | None:
    if tok.module == "index":
        return 1 if tf.module + tf.rest == tok.name else None
    if tf.rest != tok.name:
        return None
    rank = _module_rank(tf, tok, token_modules)
    return None if rank is None else rank + 1


def _pair_by_name(tfs: list[TfName], toks: list[Token]) -> dict[str, tuple[TfName, int]]:
    """Tiers 1 and 2: {token: (terraform name, tier)} for the tokens whose name matches."""
    modules = {t.module for t in toks}
    pairs: dict[str, tuple[TfName, int]] = {}
    for tok in toks:
        for tier in (1, 2):
            found = [tf for tf in tfs if _tier(tf, tok, modules) == tier]
            if len(found) > 1:
                names = ", ".join(tf.name for tf in found)
                raise TokenMapError(f"{tok.token} matches several Terraform names: {names}")
            if found:
                pairs[tok.token] = (found[0], tier)
                break
    return pairs


def _pair_leftovers(tfs: list[TfName], toks: list[Token], pairs: dict) -> None:
    """Tier 3: one leftover token and one Terraform name without a token in the same module."""
    modules = {t.module for t in toks}
    taken = {tf.name for tf, _ in pairs.values()}
    left_toks = [t for t in toks if t.token not in pairs]
    left_tfs = [tf for tf in tfs if tf.name not in taken]
    for tok in left_toks:
        same_module = [t for t in left_toks if t.module == tok.module]
        found = [tf for tf in left_tfs if _module_rank(tf, tok, modules) is not None]
        if len(same_module) == 1 and len(found) == 1:
            pairs[tok.token] = (found[0], 3)


def _primary_first(item: tuple[str, tuple[TfName, int]]) -> tuple:
    """Order of a Terraform name's tokens: a module's own before an `index` alias, then the
    better tier, then `get*` before another spelling, then by token."""
    token, (tf, tier) = item
    _, member, name = token.split(":")
    return (tf.name, member.startswith("index/"), tier, not name.startswith("get"), token)


def match(tf_names: list[str], tokens: set[str], function: bool) -> list[tuple[str, str, int]]:
    """[(terraform name, token, tier)], the primary token of each name first.

    Raises TokenMapError naming every token or Terraform name left unpaired.
    """
    tfs = [TfName.parse(n) for n in sorted(tf_names)]
    toks = [Token.parse(t, function) for t in sorted(tokens)]
    pairs = _pair_by_name(tfs, toks)
    _pair_leftovers(tfs, toks, pairs)
    taken = {tf.name for tf, _ in pairs.values()}
    missing_toks = sorted(t.token for t in toks if t.token not in pairs)
    missing_tfs = sorted(tf.name for tf in tfs if tf.name not in taken)
    if missing_toks or missing_tfs:
        raise TokenMapError(
            f"unpaired SDK tokens: {missing_toks or 'none'}; "
            f"Terraform names without a token: {missing_tfs or 'none'}"
        )
    return [
        (tf.name, token, tier) for token, (tf, tier) in sorted(pairs.items(), key=_primary_first)
    ]


def go_source(
    resources: list[tuple[str, str, int]], data_sources: list[tuple[str, str, int]]
) -> str:
    def table(name: str, rows: list[tuple[str, str, int]]) -> str:
        lines = [f"\t{{{json.dumps(tf)}, {json.dumps(tok)}}}," for tf, tok, _ in rows]
        return f"var {name} = []tokenMapping{{\n" + "\n".join(lines) + "\n}\n"

    return (
        "// Code generated by tools/engine/openstack_tokens.py at build time; DO NOT EDIT.\n\n"
        "package main\n\n"
        + table("resourceTokens", resources)
        + "\n"
        + table("dataSourceTokens", data_sources)
    )


def check_binary(
    binary: str, version: str, resource_tokens: set[str], function_tokens: set[str]
) -> None:
    """The built provider serves exactly the SDK's tokens, each on a Terraform name it has."""
    got = subprocess.run([binary, "-version"], capture_output=True, text=True, check=True)
    if got.stdout.strip() != version:
        raise TokenMapError(
            f"{binary} -version says {got.stdout.strip()!r}, the SDK wants {version}"
        )
    info = json.loads(
        subprocess.run(
            [binary, "-get-provider-info"], capture_output=True, text=True, check=True
        ).stdout
    )
    for kind, sdk in (("resources", resource_tokens), ("dataSources", function_tokens)):
        served = {entry["tok"] for entry in info[kind].values()}
        if served != sdk:
            raise TokenMapError(
                f"{kind}: the SDK sends {sorted(sdk - served) or 'nothing'} the provider does not serve; "
                f"the provider serves {sorted(served - sdk) or 'nothing'} the SDK does not send"
            )
        unknown = sorted(set(info[kind]) - set(info["provider"][kind]))
        if unknown:
            raise TokenMapError(f"{kind}: keys without a Terraform schema: {unknown}")


USAGE = """usage: python -m tools.engine.openstack_tokens TFNAMES_JSON OUT_GO
       python -m tools.engine.openstack_tokens --check PROVIDER_BINARY VERSION"""


def main(argv: list[str]) -> int:
    checking = argv[:1] == ["--check"]
    if len(argv) != (3 if checking else 2):
        print(USAGE, file=sys.stderr)
        return 2
    import pulumi_openstack

    resource_tokens, function_tokens = sdk_tokens(pathlib.Path(pulumi_openstack.__file__).parent)
    try:
        if checking:
            check_binary(argv[1], argv[2], resource_tokens, function_tokens)
            print(f"openstack token map: {argv[1]} serves every SDK token", file=sys.stderr)
            return 0
        tf = json.loads(pathlib.Path(argv[0]).read_text())
        resources = match(tf["resources"], resource_tokens, function=False)
        data_sources = match(tf["dataSources"], function_tokens, function=True)
    except TokenMapError as e:
        print(f"openstack token map: {e}", file=sys.stderr)
        return 1
    for kind, rows in (("resource", resources), ("data source", data_sources)):
        names = {tf for tf, _, _ in rows}
        print(f"openstack token map: {len(names)} {kind}s, {len(rows)} tokens", file=sys.stderr)
        abbreviated = Counter(
            f"{TfName.parse(tf).module}->{tok.split(':')[1].split('/')[0]}"
            for tf, tok, tier in rows
            if tier == 2
        )
        if abbreviated:
            print(
                f"  tier 2 (module abbreviated): {dict(sorted(abbreviated.items()))}",
                file=sys.stderr,
            )
        for tf_name, token, tier in rows:
            if tier == 3:
                print(f"  tier 3: {tf_name} <- {token}", file=sys.stderr)
    pathlib.Path(argv[1]).write_text(go_source(resources, data_sources))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

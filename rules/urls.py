"""URLs and registry paths: one parser for every URL-ish config key.

- A package mirror is a prefix: nodes append `/core:/stable:/v1.33/deb/` or
  `/github.com/<release asset>` to it, and it reaches shell scripts and apt sources. A query
  string or fragment would swallow the appended path; shell metacharacters would be run.
- An image repository (`registry.example.com:5000/kubernetes`) is a registry host and a path
  that kubeadm, containerd and the add-ons put `/<image>:<tag>` after (the reference grammar of
  github.com/distribution/reference: lowercase path components).
- An OIDC issuer is an https:// URL the API server compares, byte for byte, with the tokens'
  `iss` claim (a trailing slash is part of some issuers' names).

Every one: a host of DNS labels (or an IPv4 address), a port from 1 to 65535, no empty path
segment (`//`), and a trailing slash only where the key says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HOST_MAX = 253
LABEL_MAX = 63
PORT_MAX = 65535
_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$")
_PORT = re.compile(r"^[0-9]+$")
# Path characters: what the nodes' environment files carry unquoted (no ~, no quoting needed).
_MIRROR_SEGMENT = re.compile(r"^[A-Za-z0-9._%+:@=,-]+$")
# distribution/reference: path-component := alpha-numeric (separator alpha-numeric)*
_REPOSITORY_SEGMENT = re.compile(r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*$")
_ISSUER_SEGMENT = re.compile(r"^[^\s?#/]+$")
_SHELL = set("$`;&|<>()\\\"'*!{}[]^ \t\n")


@dataclass(frozen=True)
class Url:
    scheme: str  # "" for a registry path (no scheme)
    host: str  # "" for file://
    port: int | None
    path: tuple[str, ...]  # the segments between slashes


def parse(
    text: str,
    schemes: tuple[str, ...],
    segment: re.Pattern,
    segment_hint: str,
    trailing_slash: bool = False,
) -> Url:
    """`text` split into scheme, host, port and path, or ValueError with one line saying
    what the nodes would fail on. `schemes` empty: no scheme (a registry path)."""
    for bad, what in (("?", "a query string"), ("#", "a fragment")):
        if bad in text:
            raise ValueError(f"has {what} ({bad!r})")
    scheme, rest = _scheme(text, schemes)
    authority, slash, path = rest.partition("/")
    host, port = _authority(authority, file=scheme == "file")
    segments = path.split("/") if slash else []
    if segments and segments[-1] == "":
        if not trailing_slash:
            raise ValueError("ends with '/': give it without the trailing slash")
        segments.pop()
    for s in segments:
        if s == "":
            raise ValueError("has an empty path segment ('//')")
        if not segment.match(s):
            raise ValueError(f"path segment {s!r}: {segment_hint}")
    return Url(scheme, host, port, tuple(segments))


def _scheme(text: str, schemes: tuple[str, ...]) -> tuple[str, str]:
    if not schemes:
        return "", text
    scheme, sep, rest = text.partition("://")
    if not sep or scheme not in schemes:
        wanted = [f"{s}://" for s in schemes]
        wanted = ", ".join(wanted[:-1]) + " or " + wanted[-1] if len(wanted) > 1 else wanted[0]
        raise ValueError(f"must be an {wanted} URL (got {text!r})")
    return scheme, rest


def _authority(authority: str, file: bool) -> tuple[str, int | None]:
    if file:
        if authority:
            raise ValueError("a file:// URL names no host: file:///path")
        return "", None
    host, colon, port = authority.partition(":")
    _host(host)
    if not colon:
        return host, None
    if not _PORT.match(port) or not 1 <= int(port) <= PORT_MAX:
        raise ValueError(f"port {port!r} is not a TCP port (1 to {PORT_MAX})")
    return host, int(port)


def _host(host: str) -> None:
    if not host:
        raise ValueError("has no host")
    labels = host.split(".")
    if len(host) > HOST_MAX or not all(_LABEL.match(x) and len(x) <= LABEL_MAX for x in labels):
        raise ValueError(
            f"host {host!r} must be DNS labels (letters, digits and '-', at most {LABEL_MAX} "
            f"each) joined by '.', at most {HOST_MAX} characters, or an IPv4 address"
        )


def mirror_prefix(url: str) -> str:
    """`url` if it is an http(s):// or file:// prefix nodes can append paths to."""
    shell = sorted(set(url) & _SHELL)
    if shell:
        raise ValueError(
            f"contains {' '.join(repr(c) for c in shell)}, which the nodes' shell scripts would interpret"
        )
    try:
        parse(
            url,
            ("http", "https", "file"),
            _MIRROR_SEGMENT,
            "letters, digits and ._%+:@=,- only",
        )
    except ValueError as e:
        hint = "nodes append paths to it, so give a plain http(s):// or file:// prefix like https://mirror.example/k8s"
        raise ValueError(f"{e}; {hint}") from None
    return url


def image_repository(text: str) -> str:
    """`text` if it is a registry host (and port) with an optional path, as images are
    pulled from: registry.example.com:5000/kubernetes."""
    try:
        parse(
            text,
            (),
            _REPOSITORY_SEGMENT,
            "lowercase letters and digits, separated by '.', '_', '__' or '-'",
        )
    except ValueError as e:
        raise ValueError(
            f"{e}; give a registry path like registry.example.com/kubernetes (no scheme)"
        ) from None
    return text


def issuer_url(text: str) -> str:
    """`text` if it is an https:// issuer URL without query or fragment."""
    try:
        parse(text, ("https",), _ISSUER_SEGMENT, "no spaces", trailing_slash=True)
    except ValueError as e:
        raise ValueError(f"{e}; give an https:// URL without query or fragment") from None
    return text

"""Mirror URLs the nodes' scripts put in front of fixed paths.

A package mirror is a prefix: nodes append `/core:/stable:/v1.33/deb/` or
`/github.com/<release asset>` to it, and it reaches shell scripts and apt sources. A query
string or fragment would swallow the appended path; shell metacharacters would be run.
"""

from __future__ import annotations

import re

# Path characters: what the nodes' environment files carry unquoted (no ~, no quoting needed).
_MIRROR = re.compile(r"^(https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?|file://)(/[A-Za-z0-9._%+:@=,-]+)*$")
_SHELL = set("$`;&|<>()\\\"'*!{}[]^ \t\n")


def mirror_prefix(url: str) -> str:
    """`url` if it is an http(s):// or file:// prefix nodes can append paths to."""
    for bad, what in (("?", "a query string"), ("#", "a fragment")):
        if bad in url:
            raise ValueError(
                f"has {what} ({bad!r}); nodes append paths to it, so give a plain prefix like https://mirror.example/k8s"
            )
    shell = sorted(set(url) & _SHELL)
    if shell:
        raise ValueError(
            f"contains {' '.join(repr(c) for c in shell)}, which the nodes' shell scripts would interpret"
        )
    if url.endswith("/"):
        raise ValueError("must be an http(s):// or file:// URL without a trailing slash")
    if not _MIRROR.match(url):
        raise ValueError(
            "must be an http(s):// or file:// URL without a trailing slash, like https://mirror.example/k8s"
        )
    return url

"""The rule modules against the real tools where the machine has them (systemd-analyze,
ssh-keygen) and against the tables they must agree with."""

from __future__ import annotations

import random
import re
import shutil
import subprocess
from datetime import datetime

import pytest

from rules import labels, schedule, ssh, versions

BASE = datetime(2026, 12, 2, 6, 30, 15)  # a fixed "now" (UTC), so systemd and we agree on it


def _systemd_next(values: list[str]) -> list[str]:
    """systemd-analyze's next elapse of each value from BASE ('never' or 'YYYY-MM-DD HH:MM:SS')."""
    out = subprocess.run(
        ["systemd-analyze", "calendar", f"--base-time={BASE:%Y-%m-%d %H:%M:%S} UTC", *values],
        capture_output=True,
        text=True,
        env={"TZ": "UTC", "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    found = re.findall(r"Next elapse: (never|\w+ (\S+ \S+) UTC)", out.stdout)
    assert len(found) == len(values), out.stdout
    return [when or whole for whole, when in found]


def _ours(value: str) -> str:
    at = schedule.next_elapse(value, BASE)
    return "never" if at is None else f"{at:%Y-%m-%d %H:%M:%S}"


FIXED = [
    "hourly",
    "daily",
    "weekly",
    "monthly",
    "quarterly",
    "yearly",
    "minutely",
    "semiannually",
    "*-02-30",
    "*-04-31 00:00",
    "2020-01-01 00:00",
    "2026-12-02 06:30:15",
    "2026-12-02 06:30:16",
    "Mon *-02-29 03:00",
    "*-*-31 00/6:00",
    "Sat,Sun 23:59:59",
    "Mon..Fri 02:30",
    "*:00/15",
    "2027-*-* 00:00",
    "Wed 2026-12-02 06:00",
    "Thu 2026-12-03 01:00",
    "*-02-29 12:00",
    "1..5/2:00:00",
    "*-*-* 06:30:00",
    "Fri *-*-13 13:13",
]


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_next_elapse_agrees_with_systemd():
    """The pure-Python next elapse is systemd's, including 'never' for dates that do not exist
    or lie in the past, for fixed cases and random ones from the grammar."""
    rng = random.Random(7)

    def comp(low, high):
        a = rng.randint(low, high)
        b = rng.randint(a, high)
        return rng.choice(
            ["*", str(a), f"{a}..{b}" if b > a else str(a), f"{a},{b}" if b > a else str(a)]
        )

    generated = []
    while len(generated) < 150:
        value = " ".join(
            filter(
                None,
                [
                    rng.choice(["", "Mon", "Tue..Thu", "sat,sun"]),
                    rng.choice(
                        [
                            "",
                            f"{rng.choice(['*', '2025', '2026', '2027', '2031'])}-{comp(1, 12)}-{comp(28, 31)}",
                            f"*-{comp(1, 12)}-{comp(1, 31)}",
                        ]
                    ),
                    f"{comp(0, 23)}:{comp(0, 59)}" + rng.choice(["", f":{comp(0, 59)}"]),
                ],
            )
        )
        generated.append(value)
    values = FIXED + generated
    assert [_ours(v) for v in values] == _systemd_next(values)
    assert sum(_ours(v) == "never" for v in values) >= 4


def test_on_calendar_refuses_what_never_fires():
    for value in ("*-02-30", "*-02-31 00:00", "*-04-31", "Mon 2021-*-* 00:00", "2026-12-01 00:00"):
        with pytest.raises(ValueError, match="never fires"):
            schedule.on_calendar(value, now=BASE)
    for value in ("hourly", "*-02-29 00:00", "2026-12-02 07:00", "Fri *-*-13 13:13"):
        assert schedule.on_calendar(value, now=BASE) == value
    for value in ("", "every tuesday", "24:00", "*-13-01", "00:00 UTC"):
        with pytest.raises(ValueError, match="OnCalendar"):
            schedule.on_calendar(value, now=BASE)


def test_label_keys_follow_the_api_server():
    """IsQualifiedName: [DNS-1123 subdomain prefix (<= 253) /] name (<= 63)."""
    good = [
        "a",
        "team",
        "example.com/role",
        "myk8s.io/team",
        "a.b-c/x_y.z",
        "x" * 63,
        ("a" * 63 + ".") * 3 + "b/c",
    ]
    bad = [
        "",
        "-a",
        "a-",
        "/a",
        "a/",
        "a/b/c",
        "-bad.-/x",
        "Example.com/x",
        "x" * 64,
        "a_b.com/x",
        ("a" * 63 + ".") * 4 + "b/c",
        "a b",
        "a..b/c",
    ]
    for key in good:
        assert labels.qualified_name(key) == key
    for key in bad:
        with pytest.raises(ValueError, match="label key"):
            labels.qualified_name(key)


def test_kubelet_label_rule_is_upstreams():
    """cmd/kubelet: a kubernetes.io / k8s.io key (or subdomain) only if IsKubeletLabel; look-alike
    domains (myk8s.io, notkubernetes.io) are ordinary domains."""
    may = [
        "myk8s.io/team",
        "notkubernetes.io/x",
        "example.com/x",
        "x",
        "topology.kubernetes.io/zone",
        "topology.kubernetes.io/region",
        "kubernetes.io/hostname",
        "kubernetes.io/arch",
        "kubernetes.io/os",
        "beta.kubernetes.io/arch",
        "beta.kubernetes.io/os",
        "beta.kubernetes.io/instance-type",
        "node.kubernetes.io/instance-type",
        "failure-domain.beta.kubernetes.io/zone",
        "node.kubernetes.io/anything",
        "kubelet.kubernetes.io/x",
        "foo.node.kubernetes.io/x",
        "foo.kubelet.kubernetes.io/x",
    ]
    may_not = [
        "node-role.kubernetes.io/worker",
        "kubernetes.io/role",
        "k8s.io/x",
        "foo.k8s.io/x",
        "topology.kubernetes.io/rack",
        "node-restriction.kubernetes.io/x",
        "beta.kubernetes.io/fluentd",
    ]
    assert [k for k in may if not labels.kubelet_may_set(k)] == []
    assert [k for k in may_not if labels.kubelet_may_set(k)] == []


def test_taints_unique_by_key_and_effect():
    labels.unique_taints([("a", "NoSchedule"), ("a", "NoExecute"), ("b", "NoSchedule")])
    with pytest.raises(ValueError, match="twice"):
        labels.unique_taints([("a", "NoSchedule"), ("b", "NoSchedule"), ("a", "NoSchedule")])


@pytest.mark.skipif(not shutil.which("ssh-keygen"), reason="ssh-keygen not installed")
@pytest.mark.parametrize(
    "kind,args",
    [
        ("ssh-ed25519", ["-t", "ed25519"]),
        ("ssh-rsa", ["-t", "rsa", "-b", "2048"]),
        ("ecdsa-sha2-nistp384", ["-t", "ecdsa", "-b", "384"]),
    ],
)
def test_real_keys_pass_and_damaged_ones_do_not(tmp_path, kind, args):
    """Keys ssh-keygen makes are accepted; the same lines cut short or retyped are not."""
    subprocess.run(
        ["ssh-keygen", "-q", "-N", "", "-C", "me@host", "-f", str(tmp_path / "k"), *args],
        check=True,
    )
    line = (tmp_path / "k.pub").read_text().strip()
    assert line.startswith(kind)
    assert ssh.public_key(line + "\n") == line
    blob = line.split()[1]
    for broken in (
        f"{kind} {blob[:-8]}",
        f"{kind} AAAA",
        f"{kind} {blob}x",
        f"{'ssh-rsa' if kind != 'ssh-rsa' else 'ssh-ed25519'} {blob}",
        kind,
    ):
        with pytest.raises(ValueError, match="OpenSSH public key"):
            ssh.public_key(broken)


def test_newest_minor_is_the_add_on_tables():
    """The newest installable minor is the newest one the add-on images are pinned for."""
    from addons.versions import SUPPORTED_MINORS

    assert f"1.{versions.NEWEST_MINOR}" == max(SUPPORTED_MINORS, key=lambda m: int(m.split(".")[1]))
    assert versions.kubernetes_release(f"1.{versions.NEWEST_MINOR}.0")
    with pytest.raises(ValueError, match="newer than"):
        versions.kubernetes_release(f"1.{versions.NEWEST_MINOR + 1}.0")

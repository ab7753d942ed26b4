"""The rolling-upgrade node scripts, run the way the remote commands run them, against fakes.

Each script is fed to `bash -s` as `export KEY='value'` lines plus its text (what
components.commands.stdin_text renders and the remote.Command sends). PATH holds only
the node fake (tests/fakes/node.sh, its tools sharing one state directory, so installing a
package really changes what kubeadm and dpkg-query report) and a short list of real coreutils.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from cloud_init import SCRIPTS
from fakes import Clock, node_bin
from components.commands import stdin_text

# The scripts the upgrade commands run, in the order a worker sees them.
UPGRADE_SCRIPTS = ("upgrade-cordon.sh", "upgrade-node.sh", "upgrade-uncordon.sh")

FAKED = ("kubeadm", "kubectl", "apt-get", "apt-mark", "dpkg-query", "systemctl", "curl", "gpg")
REAL = (
    "bash",
    "timeout",
    "sleep",
    "sed",
    "tr",
    "grep",
    "head",
    "mktemp",
    "mkdir",
    "mv",
    "rm",
    "chmod",
    "dirname",
    "cat",
)
RELEASED = ["1.32.5", "1.33.1", "1.33.2", "1.33.4", "1.34.0", "1.34.1"]
PACKAGES = ("kubeadm", "kubectl", "kubelet")
# Calls that change the machine or the cluster; everything else the scripts run is a read.
MUTATING = (
    "apt-get",
    "apt-mark hold",
    "apt-mark unhold",
    "curl",
    "gpg",
    "kubeadm upgrade",
    "systemctl daemon-reload",
    "systemctl restart",
    "kubectl cordon",
    "kubectl drain",
    "kubectl uncordon",
)


class Machine:
    """A fake node (plus the cluster it sees): state dir, tools on PATH, recorded calls.

    The state layout is described at the top of tests/fakes/node.sh.
    """

    def __init__(
        self,
        root: Path,
        *,
        version="1.33.2",
        cluster=None,
        control_plane=False,
        node="n1",
        nodes=None,
        fail=None,
        kubelet_broken=False,
        sandbox="registry.example.org/k8s/pause:3.10",
    ):
        self.root = root
        self.bin = node_bin(root / "bin", FAKED, REAL)
        # Waits are bounded by a fake clock that only the scripts' sleeps move: tests of a
        # deadline count polls, whatever the machine's load.
        self.clock = Clock(root)
        self.source = root / "etc/apt/sources.list.d/kubernetes.list"
        self.keyring = root / "etc/apt/keyrings/kubernetes-apt-keyring.gpg"
        self.manifests = root / "etc/kubernetes/manifests"
        self.containerd = root / "etc/containerd/config.toml"
        self.containerd.parent.mkdir(parents=True)
        self.containerd.write_text(
            'version = 2\n\n[plugins."io.containerd.grpc.v1.cri"]\n'
            f'  sandbox_image = "{sandbox}"\n\n'
            '[plugins."io.containerd.grpc.v1.cri".cni]\n  bin_dir = "/opt/cni/bin"\n'
        )
        self.source.parent.mkdir(parents=True)
        self.keyring.parent.mkdir(parents=True)
        self.manifests.mkdir(parents=True)
        minor = ".".join(version.split(".")[:2])
        channel = f"https://pkgs.k8s.io/core:/stable:/v{minor}/deb/"
        self.source.write_text(f"deb [signed-by={self.keyring}] {channel} /\n")
        self.keyring.write_text("dearmored:boot key\n")
        if control_plane:
            (self.manifests / "kube-apiserver.yaml").write_text(
                f"spec:\n  containers:\n  - image: registry.k8s.io/kube-apiserver:v{version}\n"
            )
        self.node = node
        self.st = root / "state"
        files = {
            "apt_source_file": str(self.source),
            "apt_index": channel,
            "released": "\n".join(RELEASED) + "\n",
            "cluster": cluster or version,
            "manifest_dir": str(self.manifests),
            "node": node,
            "kubelet_active": "true",
            "fail": "".join(f"{n} {prefix}\n" for prefix, n in (fail or {}).items()),
            "calls.log": "",
        }
        for p in PACKAGES:
            files[f"pkgs/{p}"] = f"{version}-1.1"
            files[f"held/{p}"] = ""
        if kubelet_broken:
            files["kubelet_broken"] = ""
        nodes = nodes or {node: {"version": f"v{version}", "ready": "True"}}
        for name, fields in nodes.items():
            files[f"nodes/{name}/unschedulable"] = "false"
            for key, value in fields.items():
                files[f"nodes/{name}/{key}"] = (
                    str(value).lower() if isinstance(value, bool) else value
                )
        for rel, text in files.items():
            (self.st / rel).parent.mkdir(parents=True, exist_ok=True)
            (self.st / rel).write_text(text)

    @property
    def state(self) -> dict:
        def read(rel):
            return (self.st / rel).read_text()

        return {
            "pkgs": {p.name: p.read_text() for p in (self.st / "pkgs").iterdir()},
            "held": sorted(p.name for p in (self.st / "held").iterdir()),
            "cluster": read("cluster"),
            "apt_index": read("apt_index"),
            "nodes": {
                n.name: {
                    "version": read(f"nodes/{n.name}/version"),
                    "ready": read(f"nodes/{n.name}/ready"),
                    "unschedulable": read(f"nodes/{n.name}/unschedulable") == "true",
                }
                for n in (self.st / "nodes").iterdir()
            },
        }

    def calls(self) -> list[str]:
        return (self.st / "calls.log").read_text().splitlines()

    def run(self, name: str, **env) -> subprocess.CompletedProcess:
        """Run script `name` like `sudo bash -s` with `env` exported; returns the process, with
        the calls made by this run in .calls."""
        before = len(self.calls())
        defaults = {
            "NODE_NAME": self.node,
            "KUBECONFIG": str(self.root / "kubeconfig"),
            "POLL_INTERVAL": "0.05",
        }
        if name == "upgrade-node.sh":
            defaults.update(
                APT_SOURCE_FILE=str(self.source),
                APT_KEYRING=str(self.keyring),
                MANIFEST_DIR=str(self.manifests),
                CONTAINERD_CONFIG=str(self.containerd),
                UPGRADE_TIMEOUT="60",
            )
        defaults.update(env)
        proc = subprocess.run(
            [str(self.bin / "bash"), "-s"],
            input=stdin_text(name, defaults),
            text=True,
            capture_output=True,
            timeout=120,
            env={
                "PATH": str(self.bin),
                "FAKE_STATE": str(self.st),
                "LANG": "C.UTF-8",
                **self.clock.env,
            },
        )
        proc.calls = self.calls()[before:]
        return proc


def called(calls: list[str], *words: str) -> list[int]:
    """Indexes of the calls whose line starts with words[0] and contains every other word."""
    return [
        i
        for i, c in enumerate(calls)
        if c.startswith(words[0]) and all(w in c.split() for w in words[1:])
    ]


def in_order(calls: list[str], *steps: tuple[str, ...]) -> list[int]:
    """Assert each step happens exactly once, in the given order; return their indexes."""
    at = []
    for step in steps:
        hits = called(calls, *step)
        assert len(hits) == 1, f"{step} ran {len(hits)} times in {calls}"
        at += hits
    assert at == sorted(at), f"out of order: {list(zip(steps, at, strict=True))}"
    assert len(at) == len(steps) > 0
    return at


def mutating(calls: list[str]) -> list[str]:
    return [c for c in calls if c.startswith(MUTATING)]


def upgraded_packages(m: Machine, version: str):
    state = m.state
    assert state["pkgs"] == {p: f"{version}-1.1" for p in ("kubeadm", "kubelet", "kubectl")}
    assert state["held"] == ["kubeadm", "kubectl", "kubelet"]
    assert state["nodes"][m.node]["version"] == f"v{version}"


PACKAGE_STEPS = (
    ("curl", "https://pkgs.k8s.io/core:/stable:/v1.34/deb/Release.key"),
    ("gpg", "--dearmor"),
    ("apt-get", "update"),
    ("apt-mark unhold", "kubeadm"),
    ("apt-get", "install", "kubeadm=1.34.1-*"),
    ("apt-mark hold", "kubeadm"),
)
KUBELET_STEPS = (
    ("apt-mark unhold", "kubelet", "kubectl"),
    ("apt-get", "install", "kubelet=1.34.1-*", "kubectl=1.34.1-*"),
    ("apt-mark hold", "kubelet", "kubectl"),
    ("systemctl daemon-reload",),
    ("systemctl restart", "kubelet"),
)


def test_first_master_minor_upgrade_sequence(tmp_path):
    """The first master upgrades its kubeadm, then the cluster (plan, apply), then its kubelet."""
    m = Machine(tmp_path, control_plane=True)
    p = m.run("upgrade-node.sh", TARGET_VERSION="1.34.1", ROLE="first-master")
    assert p.returncode == 0, p.stderr
    in_order(
        p.calls,
        *PACKAGE_STEPS,
        ("kubeadm upgrade plan", "v1.34.1"),
        ("kubeadm upgrade apply", "-y", "v1.34.1"),
        *KUBELET_STEPS,
    )
    assert not called(p.calls, "kubeadm upgrade node")
    assert m.state["cluster"] == "1.34.1"
    assert "kube-apiserver:v1.34.1" in (m.manifests / "kube-apiserver.yaml").read_text()
    upgraded_packages(m, "1.34.1")


@pytest.mark.parametrize("role,control_plane", [("master", True), ("worker", False)])
def test_other_nodes_run_upgrade_node(tmp_path, role, control_plane):
    """Masters after the first, and workers, run `kubeadm upgrade node`, never plan/apply."""
    m = Machine(tmp_path, control_plane=control_plane, cluster="1.34.1")
    p = m.run("upgrade-node.sh", TARGET_VERSION="1.34.1", ROLE=role)
    assert p.returncode == 0, p.stderr
    in_order(p.calls, *PACKAGE_STEPS, ("kubeadm upgrade node",), *KUBELET_STEPS)
    assert not called(p.calls, "kubeadm upgrade apply")
    assert not called(p.calls, "kubeadm upgrade plan")
    upgraded_packages(m, "1.34.1")


@pytest.mark.parametrize("role", ["master", "worker"])
def test_other_nodes_wait_for_the_first_master(tmp_path, role):
    """A kubelet must not be newer than the API server: before the cluster is upgraded, the
    other roles refuse, changing nothing."""
    m = Machine(tmp_path, control_plane=role == "master")
    p = m.run("upgrade-node.sh", TARGET_VERSION="1.34.1", ROLE=role)
    assert p.returncode == 2
    assert "upgrade the first master" in p.stderr
    assert p.calls and mutating(p.calls) == []


def test_failed_apply_then_rerun_resumes(tmp_path):
    """A run that dies in `kubeadm upgrade apply` leaves kubeadm installed; the re-run does not
    fetch the key or install kubeadm again, applies once, then finishes the kubelet."""
    m = Machine(tmp_path, control_plane=True, fail={"kubeadm upgrade apply": 1})
    first = m.run("upgrade-node.sh", TARGET_VERSION="1.34.1", ROLE="first-master")
    assert first.returncode == 1
    assert "kubeadm upgrade apply -y v1.34.1" in first.stderr and "re-run" in first.stderr
    in_order(first.calls, *PACKAGE_STEPS, ("kubeadm upgrade apply",))
    assert not called(first.calls, "apt-get", "install", "kubelet=1.34.1-*")
    assert m.state["cluster"] == "1.33.2"

    second = m.run("upgrade-node.sh", TARGET_VERSION="1.34.1", ROLE="first-master")
    assert second.returncode == 0, second.stderr
    for step in PACKAGE_STEPS:
        if step != ("apt-get", "update"):  # refreshed once before the kubelet install
            assert not called(second.calls, *step), f"{step} repeated"
    in_order(second.calls, ("kubeadm upgrade plan",), ("kubeadm upgrade apply",), *KUBELET_STEPS)
    upgraded_packages(m, "1.34.1")

    third = m.run("upgrade-node.sh", TARGET_VERSION="1.34.1", ROLE="first-master")
    assert third.returncode == 0, third.stderr
    assert third.calls and mutating(third.calls) == [], "a finished node must see no changes"


def test_failed_kubelet_restart_then_rerun_resumes(tmp_path):
    """A run that dies restarting the kubelet leaves the packages and `kubeadm upgrade node`
    done; the re-run only restarts the kubelet."""
    m = Machine(tmp_path, cluster="1.34.1", fail={"systemctl restart kubelet": 1})
    first = m.run("upgrade-node.sh", TARGET_VERSION="1.34.1", ROLE="worker")
    assert first.returncode == 1 and "systemctl restart kubelet" in first.stderr
    assert m.state["pkgs"]["kubelet"] == "1.34.1-1.1"
    assert called(first.calls, "kubeadm upgrade node")

    second = m.run("upgrade-node.sh", TARGET_VERSION="1.34.1", ROLE="worker")
    assert second.returncode == 0, second.stderr
    assert mutating(second.calls) == ["systemctl daemon-reload", "systemctl restart kubelet"]
    upgraded_packages(m, "1.34.1")


def sandbox(m: Machine) -> str:
    return next(
        line.split('"')[1]
        for line in m.containerd.read_text().splitlines()
        if "sandbox_image" in line
    )


def test_minor_upgrade_moves_the_sandbox_image_with_kubernetes(tmp_path):
    """1.33 -> 1.34 moves pause 3.10 -> 3.10.1 (kubeadm's list for the target), keeps the
    registry the node was set up with, and restarts containerd before the kubelet; the rest
    of containerd's config is untouched, and a re-run changes nothing."""
    m = Machine(tmp_path, cluster="1.34.1")
    rest = [line for line in m.containerd.read_text().splitlines() if "sandbox_image" not in line]
    p = m.run("upgrade-node.sh", TARGET_VERSION="1.34.1", ROLE="worker")
    assert p.returncode == 0, p.stderr
    assert sandbox(m) == "registry.example.org/k8s/pause:3.10.1"
    assert [
        line for line in m.containerd.read_text().splitlines() if "sandbox_image" not in line
    ] == rest
    in_order(
        p.calls,
        ("kubeadm config images list", "v1.34.1"),
        ("systemctl restart", "containerd"),
        ("systemctl restart", "kubelet"),
    )
    again = m.run("upgrade-node.sh", TARGET_VERSION="1.34.1", ROLE="worker")
    assert again.returncode == 0 and mutating(again.calls) == [], again.calls


def test_patch_upgrade_keeps_the_sandbox_image(tmp_path):
    """Same pause tag for the target: containerd is not restarted."""
    m = Machine(tmp_path, cluster="1.33.4")
    p = m.run("upgrade-node.sh", TARGET_VERSION="1.33.4", ROLE="worker")
    assert p.returncode == 0, p.stderr
    assert sandbox(m) == "registry.example.org/k8s/pause:3.10"
    assert called(p.calls, "kubeadm config images list") and not called(
        p.calls, "systemctl restart", "containerd"
    )


def test_failed_containerd_restart_is_retried_by_the_rerun(tmp_path):
    """The config already names the new image after a failed restart: the re-run still
    restarts containerd (once), then finishes."""
    m = Machine(tmp_path, cluster="1.34.1", fail={"systemctl restart containerd": 1})
    first = m.run("upgrade-node.sh", TARGET_VERSION="1.34.1", ROLE="worker")
    assert first.returncode == 1 and "systemctl restart containerd" in first.stderr
    second = m.run("upgrade-node.sh", TARGET_VERSION="1.34.1", ROLE="worker")
    assert second.returncode == 0, second.stderr
    in_order(second.calls, ("systemctl restart", "containerd"), ("systemctl restart", "kubelet"))
    assert sandbox(m) == "registry.example.org/k8s/pause:3.10.1"


def test_kubelet_wait_is_bounded(tmp_path):
    """A kubelet that never comes back active fails within UPGRADE_TIMEOUT, pointing at its log."""
    m = Machine(tmp_path, version="1.34.1", kubelet_broken=True)
    (m.st / "kubelet_active").write_text("false")
    p = m.run(
        "upgrade-node.sh",
        TARGET_VERSION="1.34.1",
        ROLE="worker",
        UPGRADE_TIMEOUT="60",
        POLL_INTERVAL="15",
    )
    assert p.returncode == 1
    assert "not active at 1.34.1 within UPGRADE_TIMEOUT=60s" in p.stderr
    assert "journalctl -u kubelet" in p.stderr
    # One look before the restart, then polls at 0, 15, 30, 45 and 60 s: the deadline has
    # come at the fifth. (A minute: each poll is bounded for real by what is left.)
    assert len(called(p.calls, "systemctl is-active")) == 1 + 5, "it polled"
    assert m.clock.sleeps() == [15.0] * 4


def test_interrupted_after_unhold_restores_holds(tmp_path):
    """A run killed between install and hold leaves packages unheld; the re-run holds them."""
    m = Machine(tmp_path, cluster="1.34.1", fail={"apt-mark hold kubelet": 1})
    assert m.run("upgrade-node.sh", TARGET_VERSION="1.34.1", ROLE="worker").returncode == 1
    assert "kubelet" not in m.state["held"]
    p = m.run("upgrade-node.sh", TARGET_VERSION="1.34.1", ROLE="worker")
    assert p.returncode == 0, p.stderr
    assert not called(p.calls, "apt-get", "install")
    assert called(p.calls, "apt-mark hold", "kubelet")
    upgraded_packages(m, "1.34.1")


@pytest.mark.parametrize(
    "current,target,why",
    [
        ("1.32.5", "1.34.1", "skips a minor version"),
        ("1.34.1", "1.34.0", "downgrade"),
        ("1.34.0", "1.33.4", "downgrade"),
    ],
)
def test_bad_step_refused_before_any_change(tmp_path, current, target, why):
    """A skipped minor or a downgrade is refused with the rule's message before anything moves
    (the node decides: only it knows the version it runs)."""
    m = Machine(tmp_path, version=current, control_plane=True)
    source = m.source.read_text()
    p = m.run("upgrade-node.sh", TARGET_VERSION=target, ROLE="first-master")
    assert p.returncode == 2
    assert why in p.stderr and f"from {current}" in p.stderr
    assert p.calls and mutating(p.calls) == []
    assert m.source.read_text() == source


def test_patch_upgrade_keeps_the_apt_source(tmp_path):
    """1.33.2 -> 1.33.4 stays in the v1.33 repository: no key fetch, packages upgraded."""
    m = Machine(tmp_path, control_plane=True)
    source = m.source.read_text()
    p = m.run("upgrade-node.sh", TARGET_VERSION="v1.33.4", ROLE="first-master")
    assert p.returncode == 0, p.stderr
    assert not called(p.calls, "curl") and m.source.read_text() == source
    in_order(
        p.calls,
        ("apt-get", "install", "kubeadm=1.33.4-*"),
        ("kubeadm upgrade apply", "v1.33.4"),
        ("systemctl restart", "kubelet"),
    )
    upgraded_packages(m, "1.33.4")


@pytest.mark.parametrize("mirror", [None, "", "https://mirror.example.org/k8s/"])
def test_apt_source_switched_to_target_minor(tmp_path, mirror):
    """The source line names the target minor's repository, on the mirror when one is set, and
    its key comes from that repository. An empty mirror, as
    the program sends when none is configured, means pkgs.k8s.io."""
    m = Machine(tmp_path, cluster="1.34.1")
    env = {} if mirror is None else {"PACKAGE_MIRROR": mirror}  # the program sends "" for none
    p = m.run("upgrade-node.sh", TARGET_VERSION="1.34.1", ROLE="worker", **env)
    assert p.returncode == 0, p.stderr
    base = "https://mirror.example.org/k8s" if mirror else "https://pkgs.k8s.io"
    channel = f"{base}/core:/stable:/v1.34/deb/"
    assert m.source.read_text() == f"deb [signed-by={m.keyring}] {channel} /\n"
    assert called(p.calls, "curl", f"{channel}Release.key")
    assert m.keyring.read_text() == (
        f"dearmored:KEY DE15B14486CD377B9E876E1A234654DA9A296436 {channel}Release.key\n"
    )
    assert m.state["apt_index"] == channel


def test_foreign_key_refused(tmp_path):
    """A mirror serving some other key is refused before the source or keyring change."""
    m = Machine(tmp_path, cluster="1.34.1")
    (m.st / "served_fingerprint").write_text("0123456789ABCDEF0123456789ABCDEF01234567")
    source, keyring = m.source.read_text(), m.keyring.read_text()
    p = m.run(
        "upgrade-node.sh",
        TARGET_VERSION="1.34.1",
        ROLE="worker",
        PACKAGE_MIRROR="https://evil.example",
    )
    assert p.returncode == 1
    assert "is not the Kubernetes release key" in p.stderr and "0123456789ABCDEF" in p.stderr
    assert (m.source.read_text(), m.keyring.read_text()) == (source, keyring)
    assert not called(p.calls, "apt-get")


@pytest.mark.parametrize(
    "env,message",
    [
        ({"TARGET_VERSION": "1.34", "ROLE": "worker"}, "not a version"),
        ({"TARGET_VERSION": "1.34.1", "ROLE": "minion"}, "must be first-master, master or worker"),
    ],
)
def test_bad_input_refused(tmp_path, env, message):
    """Bad input stops the script before it calls anything."""
    m = Machine(tmp_path)
    p = m.run("upgrade-node.sh", **env)
    assert p.returncode == 2 and message in p.stderr
    assert p.calls == []


def test_cordon_drains_an_old_node(tmp_path):
    """A node below the target version is cordoned, then drained with the flags daemonsets and
    emptyDir pods need."""
    m = Machine(tmp_path, nodes={"w1": {"version": "v1.33.2", "ready": "True"}})
    p = m.run("upgrade-cordon.sh", NODE_NAME="w1", TARGET_VERSION="1.34.1", DRAIN_TIMEOUT="90")
    assert p.returncode == 0, p.stderr
    in_order(
        p.calls,
        ("kubectl", "get", "node", "w1"),
        ("kubectl", "cordon", "w1"),
        (
            "kubectl",
            "drain",
            "w1",
            "--ignore-daemonsets",
            "--delete-emptydir-data",
            "--timeout=90s",
        ),
    )
    assert m.state["nodes"]["w1"]["unschedulable"] is True


def test_cordon_skips_a_node_at_target(tmp_path):
    """A node already at the target (upgraded earlier, or joined new) is not drained."""
    m = Machine(tmp_path, nodes={"w1": {"version": "v1.34.1", "ready": "True"}})
    p = m.run("upgrade-cordon.sh", NODE_NAME="w1", TARGET_VERSION="1.34.1")
    assert p.returncode == 0, p.stderr
    assert "nothing to drain" in p.stdout
    assert p.calls and mutating(p.calls) == []


def test_cordon_failures_are_explained(tmp_path):
    """A missing Node and a drain that fails each exit 1 with what to do next."""
    m = Machine(
        tmp_path,
        nodes={"w1": {"version": "v1.33.2", "ready": "True"}},
        fail={f"kubectl --kubeconfig {tmp_path}/kubeconfig drain": 1},
    )
    p = m.run("upgrade-cordon.sh", NODE_NAME="w9", TARGET_VERSION="1.34.1")
    assert p.returncode == 1 and "cannot read Node w9" in p.stderr
    p = m.run("upgrade-cordon.sh", NODE_NAME="w1", TARGET_VERSION="1.34.1")
    assert p.returncode == 1 and "PodDisruptionBudget" in p.stderr and "stays cordoned" in p.stderr
    p = m.run("upgrade-cordon.sh", NODE_NAME="w1", TARGET_VERSION="1.34.1")
    assert p.returncode == 0, p.stderr
    assert len(called(p.calls, "kubectl", "drain")) == 1


def test_uncordon_when_ready_at_target(tmp_path):
    """An upgraded, Ready node is uncordoned."""
    m = Machine(
        tmp_path, nodes={"w1": {"version": "v1.34.1", "ready": "True", "unschedulable": True}}
    )
    p = m.run("upgrade-uncordon.sh", NODE_NAME="w1", TARGET_VERSION="1.34.1")
    assert p.returncode == 0, p.stderr
    in_order(p.calls, ("kubectl", "get", "node", "w1"), ("kubectl", "uncordon", "w1"))
    assert m.state["nodes"]["w1"]["unschedulable"] is False


@pytest.mark.parametrize("version,ready", [("v1.33.2", "True"), ("v1.34.1", "False")])
def test_uncordon_waits_bounded_and_keeps_cordon(tmp_path, version, ready):
    """A node not Ready at the target makes the command fail after READY_TIMEOUT, still cordoned."""
    m = Machine(tmp_path, nodes={"w1": {"version": version, "ready": ready, "unschedulable": True}})
    p = m.run(
        "upgrade-uncordon.sh",
        NODE_NAME="w1",
        TARGET_VERSION="1.34.1",
        READY_TIMEOUT="1",
        POLL_INTERVAL="0.25",
    )
    assert p.returncode == 1
    assert f"'{version} {ready}'" in p.stderr and "stays cordoned" in p.stderr
    # Polls at 0, 0.25, 0.5, 0.75 and 1 s: the deadline has come at the fifth.
    assert len(called(p.calls, "kubectl", "get", "node", "w1")) == 5, "it polled"
    assert m.clock.sleeps() == [0.25] * 4
    assert not called(p.calls, "kubectl", "uncordon")
    assert m.state["nodes"]["w1"]["unschedulable"] is True


@pytest.mark.parametrize("name", UPGRADE_SCRIPTS)
def test_shellcheck_clean(name):
    """The scripts pass shellcheck with no findings at all."""
    shellcheck = Path(sys.executable).with_name("shellcheck")
    p = subprocess.run([str(shellcheck), "-x", str(SCRIPTS / name)], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout


def test_script_stdin_quotes_values():
    """Values reach the script verbatim, quotes and all; a bad key is refused."""
    text = stdin_text("upgrade-cordon.sh", {"TARGET_VERSION": "1.34.1", "NODE_NAME": "it's"})
    assert text.startswith("export NODE_NAME=") and "export TARGET_VERSION=1.34.1\n" in text
    p = subprocess.run(
        ["bash", "-c", text.split("#!")[0] + 'printf %s "$NODE_NAME"'],
        capture_output=True,
        text=True,
    )
    assert p.stdout == "it's"
    with pytest.raises(ValueError):
        stdin_text("upgrade-cordon.sh", {"A B": "x"})

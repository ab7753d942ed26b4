"""The step kit (cloud_init.steps): the tarball node-ready.sh installs, the loader line a
day-2 command sends instead of its script, and the command files that point into the kit.

node-ready.sh runs for real under `bash -s` (exports, then the script), with a fake
cloud-init and a fake chown (the tests need not run as root); tar, base64, mktemp and mv
are the real ones, so the kit really is unpacked and swapped in."""

from __future__ import annotations

import base64
import io
import os
import subprocess
import tarfile
import threading
from pathlib import Path

import pytest

from cloud_init import SCRIPTS, script
from cloud_init.steps import (
    STEP_KIT_DIR,
    UPGRADE_STEPS,
    command_file,
    loader,
    step_kit_tar_b64,
)
from cloud_init.userdata import tar_b64
from fakes import FakeBin, run_remote

# What a worker's upgrade runs from its kit: upgrade-worker.sh and its three steps.
UPGRADE_WORKER_KIT = ("upgrade-worker.sh", *UPGRADE_STEPS)


@pytest.fixture
def node(tmp_path):
    fakes = FakeBin(tmp_path, ["cloud-init", "chown"], clock=True)
    fakes.kit = tmp_path / "usr/local/lib/openstack-k8s/steps"
    return fakes


def ready(node, **env):
    exports = dict(
        READY_TIMEOUT="5",
        CLOUD_INIT_OUTPUT_LOG=str(node.root / "none.log"),
        STEP_KIT_DIR=str(node.kit),
    )
    exports.update(env)
    return run_remote(SCRIPTS / "node-ready.sh", exports, node.env())


def kit_files(kit: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in kit.iterdir()}


def beside(kit: Path) -> list[str]:
    """What lies in the kit's parent directory: the link and the kit it points to, no more."""
    return sorted(p.name for p in kit.parent.iterdir())


# --- what the kit holds (Python) ----------------------------------------------------------


def unpack(b64: str) -> dict[str, tuple[str, int]]:
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(b64)), mode="r:gz") as tar:
        return {m.name: (tar.extractfile(m).read().decode(), m.mode) for m in tar.getmembers()}


def test_kit_tarball_holds_the_shipped_scripts_at_their_names():
    """Each script as shipped (lib/common.sh inlined), at its bare name, 0755; the same
    names in another order or repeated give the same bytes."""
    b64 = step_kit_tar_b64(UPGRADE_WORKER_KIT)
    members = unpack(b64)
    assert sorted(members) == sorted(UPGRADE_WORKER_KIT)
    for name, (text, mode) in members.items():
        assert text == script(name) and mode == 0o755
        assert "\ndie() {" in text  # the library travels inlined
    assert step_kit_tar_b64([*reversed(UPGRADE_WORKER_KIT), "upgrade-node.sh"]) == b64


@pytest.mark.parametrize("name", ["lib/common.sh", "nope.sh", "../node-ready.sh", "a b.sh", ""])
def test_only_existing_scripts_go_into_a_kit_or_a_loader(name):
    with pytest.raises(ValueError, match="is not a script under cloud_init/scripts/"):
        step_kit_tar_b64([name])
    with pytest.raises(ValueError, match="is not a script under cloud_init/scripts/"):
        loader(name)


def test_an_empty_kit_is_refused():
    with pytest.raises(ValueError, match="at least one script"):
        step_kit_tar_b64([])


def test_loader_is_one_line_into_the_kit():
    line = loader("upgrade-worker.sh")
    assert "\n" not in line
    assert line.endswith(f'exec bash {STEP_KIT_DIR}/upgrade-worker.sh "$@"')
    with pytest.raises(ValueError, match="kit_dir"):
        loader("upgrade-worker.sh", kit_dir="relative/steps")


# --- node-ready.sh installs it --------------------------------------------------------------


@pytest.mark.parametrize("status", [0, 2], ids=["done", "recoverable-errors"])
def test_ready_installs_the_kit(node, status):
    """cloud-init done (or done with recoverable errors): the kit's scripts are in
    STEP_KIT_DIR as shipped, 0755, made root's; STEP_KIT_DIR is a link to a directory beside
    it (what lets a later kit replace it by one rename)."""
    node.rule("cloud-init", "status --wait", {"rc": status})
    result = ready(node, STEP_KIT_TAR_B64=step_kit_tar_b64(UPGRADE_WORKER_KIT))
    assert result.returncode == 0, result.stderr
    assert kit_files(node.kit) == {name: script(name) for name in UPGRADE_WORKER_KIT}
    assert {oct((node.kit / n).stat().st_mode & 0o777) for n in UPGRADE_WORKER_KIT} == {"0o755"}
    target = os.readlink(node.kit)
    assert "/" not in target and target.startswith(".steps.")
    assert oct(node.kit.resolve().stat().st_mode & 0o777) == "0o755"
    assert node.calls("chown") == [["-R", "root:root", str(node.kit.parent / target)]]
    assert beside(node.kit) == sorted(["steps", target])
    assert "step kit installed" in result.stdout and "(4 scripts)" in result.stdout


def test_without_a_kit_ready_is_what_it_was(node):
    """No STEP_KIT_TAR_B64: the cloud-init wait only; nothing written, nothing chowned."""
    result = ready(node)
    assert result.returncode == 0, result.stderr
    assert node.calls() == [["cloud-init", "status", "--wait"]]
    assert not node.kit.parent.exists()
    assert "step kit" not in result.stdout + result.stderr


def test_a_failed_boot_installs_no_kit(node):
    node.rule("cloud-init", "status --wait", {"rc": 1})
    result = ready(node, STEP_KIT_TAR_B64=step_kit_tar_b64(UPGRADE_WORKER_KIT))
    assert result.returncode == 1 and "cloud-init failed" in result.stderr
    assert not node.kit.parent.exists()


def test_a_new_kit_replaces_the_old_one_whole(node):
    """A second kit replaces the first in STEP_KIT_DIR: its files present, the first's gone.
    The first kit's directory stays beside it, whole, until the third install (a step that
    resolved the link just before the swap still finds its files); what an interrupted run
    left beside it is cleaned up."""

    def install(*names):
        result = ready(node, STEP_KIT_TAR_B64=step_kit_tar_b64(names))
        assert result.returncode == 0, result.stderr
        assert kit_files(node.kit) == {n: script(n) for n in names}
        return os.readlink(node.kit)

    first = install("upgrade-cordon.sh", "etcd-backup.sh")
    (node.kit.parent / ".steps.Xy12ab").mkdir()  # an unpack cut short by a reboot
    second = install("upgrade-node.sh", "etcd-backup.sh")
    assert beside(node.kit) == sorted(["steps", second, first])
    assert kit_files(node.kit.parent / first) == {
        n: script(n) for n in ("upgrade-cordon.sh", "etcd-backup.sh")
    }
    third = install("upgrade-uncordon.sh")
    assert len({first, second, third}) == 3
    assert beside(node.kit) == sorted(["steps", third, second])


def test_a_directory_made_by_hand_is_replaced(node):
    node.kit.mkdir(parents=True)
    (node.kit / "stale.sh").write_text("echo stale\n")
    result = ready(node, STEP_KIT_TAR_B64=step_kit_tar_b64(["upgrade-node.sh"]))
    assert result.returncode == 0, result.stderr
    assert node.kit.is_symlink()
    assert kit_files(node.kit) == {"upgrade-node.sh": script("upgrade-node.sh")}
    assert beside(node.kit) == sorted(["steps", os.readlink(node.kit), ".steps.replaced"])
    assert kit_files(node.kit.parent / ".steps.replaced") == {"stale.sh": "echo stale\n"}


def test_a_reader_never_sees_half_a_kit(node):
    """While kits A and B replace each other, a reader listing STEP_KIT_DIR in a loop sees
    A or B, never a mix, an empty directory or no directory: the swap is one rename."""
    kits = {
        frozenset(["upgrade-cordon.sh", "upgrade-node.sh"]): None,
        frozenset(["upgrade-uncordon.sh", "etcd-backup.sh", "etcd-restore.sh"]): None,
    }
    tars = [step_kit_tar_b64(k) for k in kits]
    assert ready(node, STEP_KIT_TAR_B64=tars[0]).returncode == 0
    seen: list[frozenset | str] = []
    stop = threading.Event()

    def read():
        while not stop.is_set():
            try:
                seen.append(frozenset(os.listdir(node.kit)))
            except OSError as e:
                seen.append(f"{type(e).__name__}: {e}")

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(6):
            result = ready(node, STEP_KIT_TAR_B64=tars[(i + 1) % 2])
            assert result.returncode == 0, result.stderr
    finally:
        stop.set()
        reader.join()
    assert set(seen) == set(kits), {s for s in seen if s not in kits}


NOT_A_TAR = "STEP_KIT_TAR_B64 is not a base64 gzipped tar"
NOT_FILES = "STEP_KIT_TAR_B64 must hold script files only, at least one"


@pytest.mark.parametrize(
    "b64, message",
    [
        ("not base64 at all!", NOT_A_TAR),
        (base64.b64encode(b"plain text").decode(), NOT_A_TAR),
        (tar_b64([("sub/x.sh", "echo\n", 0o755)]), NOT_FILES),
        (tar_b64([]), NOT_FILES),
    ],
    ids=["not-base64", "not-gzip", "subdirectory", "empty"],
)
def test_a_bad_kit_fails_and_keeps_the_installed_one(node, b64, message):
    """Exit 1 with one line that names the variable; the kit already there is untouched and
    nothing is left beside it."""
    assert ready(node, STEP_KIT_TAR_B64=step_kit_tar_b64(["upgrade-node.sh"])).returncode == 0
    before = beside(node.kit)
    result = ready(node, STEP_KIT_TAR_B64=b64)
    assert result.returncode == 1
    assert result.stderr == f"node-ready: {message}: the step kit was not installed\n"
    assert beside(node.kit) == before
    assert kit_files(node.kit) == {"upgrade-node.sh": script("upgrade-node.sh")}


def test_a_bad_kit_dir_is_refused(node):
    result = ready(node, STEP_KIT_DIR="relative/steps")
    assert result.returncode == 2 and "STEP_KIT_DIR must be an absolute path" in result.stderr
    assert node.calls() == []


# --- the loader and the command files run the installed copy --------------------------------


def run_loader(line: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """A day-2 command's stdin: its exports, then the loader line, fed to `bash -s`."""
    stdin = "".join(f"export {k}='{v}'\n" for k, v in env.items()) + line + "\n"
    return subprocess.run(
        ["bash", "-s", *args],
        input=stdin,
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_loader_runs_the_installed_copy_with_its_environment(node):
    """The kit's upgrade-worker.sh runs (and refuses the missing input, as the script does),
    with the environment the command exported."""
    assert ready(node, STEP_KIT_TAR_B64=step_kit_tar_b64(UPGRADE_WORKER_KIT)).returncode == 0
    line = loader("upgrade-worker.sh", kit_dir=str(node.kit))
    result = run_loader(line, {"NODE_NAME": "w-1", "TARGET_VERSION": "1.34.1", "KUBE_API": "x"})
    assert result.returncode == 2
    assert result.stderr == "upgrade-worker: KUBE_TOKEN is required\n"


def test_loader_without_a_kit_says_what_installs_it(tmp_path):
    kit = tmp_path / "steps"
    result = run_loader(loader("upgrade-worker.sh", kit_dir=str(kit)), {"NODE_NAME": "w-1"})
    assert result.returncode == 1
    assert result.stderr == (
        f"{kit}/upgrade-worker.sh is missing: the node's -ready command installs the step kit\n"
    )


def test_command_file_passes_its_arguments(tmp_path):
    """An executable file from command_file runs the kit's script with its own arguments
    (etcd-restore.sh --force SNAPSHOT, for instance)."""
    kit = tmp_path / "steps"
    kit.mkdir()
    (kit / "etcd-restore.sh").write_text('echo "restore: $#: $*"\n')
    wrapper = tmp_path / "etcd-restore.sh"
    wrapper.write_text(command_file("etcd-restore.sh", kit_dir=str(kit)))
    wrapper.chmod(0o755)
    result = subprocess.run(
        [str(wrapper), "--force", "/var/backups/etcd/a b.db"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "restore: 2: --force /var/backups/etcd/a b.db\n"

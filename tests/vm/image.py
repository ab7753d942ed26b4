"""A cached Debian 12 disk image for test VMs, made with debootstrap and ``mkfs.ext4 -d``.

The image is what a minimal Debian cloud image has that matters to cloud-init: systemd, udev,
cloud-init itself, an SSH server, a kernel with its initrd, DHCP and apt with CA certificates.
Nothing in it is specific to this project, so a user-data that works here works on a stock
Debian 12 cloud image too.

Cache layout (the root is ``$OPENSTACK_K8S_VM_CACHE`` or
``${XDG_CACHE_HOME:-~/.cache}/openstack-k8s/vm-image``)::

    <root>/<key>/disk.raw      ext4 root filesystem, never written after the build
    <root>/<key>/vmlinuz       kernel and initrd copied out of the rootfs /boot
    <root>/<key>/initrd.img
    <root>/<key>/manifest.json what was built, from what, and how long it took
    <root>/.lock-<key>         flock held while building
    <root>/.tmp-<key>-<pid>    a build in progress (or a killed one, removed by the next build)

``<key>`` hashes the suite, variant, package list and image layout version, so changing any of
them builds a new image and never reuses an old one. A build happens in ``.tmp-*`` and only a
complete one is renamed to ``<key>``: a directory named by its key is always a finished image.
"""

from __future__ import annotations

import ctypes
import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

SUITE = "bookworm"
VARIANT = "minbase"
MIRROR = os.environ.get("OPENSTACK_K8S_VM_MIRROR", "http://deb.debian.org/debian")
# What debootstrap adds to minbase. python3-cffi-backend must be named or cloud-init fails to
# configure (a dependency debootstrap's resolver misses); sudo is in every Debian cloud image
# and the default user's NOPASSWD rule needs it.
PACKAGES = (
    "systemd-sysv",
    "udev",
    "python3-cffi-backend",
    "cloud-init",
    "openssh-server",
    "linux-image-cloud-amd64",
    "ifupdown",
    "isc-dhcp-client",
    "iproute2",
    "netbase",
    "ca-certificates",
    "sudo",
    "locales",
)
DISK_SIZE = "3G"
# Files written into the rootfs after debootstrap, as a cloud image has them:
# - a system locale, so cloud-init's locale module has nothing to do (with none, it asks
#   Debian's locale-gen for en_US.UTF-8, which Debian's locale-gen ignores, and fails);
# - no apt translation indexes: 6 MB that every `apt-get update` in the guest would fetch and
#   parse at TCG speed for nothing.
ROOTFS_FILES = {
    "etc/default/locale": "LANG=C.UTF-8\n",
    "etc/apt/apt.conf.d/99no-translations": 'Acquire::Languages "none";\n',
}
# Bump when the layout of a cache entry or the way it is made changes.
LAYOUT_VERSION = 1
BUILD_TIMEOUT = 1200  # seconds; debootstrap is about 80 s cold on a 2-core machine


class ImageBuildError(RuntimeError):
    """The image could not be built; the message carries the tail of the failing tool's log."""


@dataclasses.dataclass(frozen=True)
class Image:
    """A finished, cached image: read-only inputs for a VM."""

    directory: Path
    disk: Path
    kernel: Path
    initrd: Path
    manifest: dict


def image_key(suite: str = SUITE, packages: tuple[str, ...] = PACKAGES) -> str:
    """Cache key: changes whenever anything that decides the image's content changes."""
    recipe = {
        "suite": suite,
        "variant": VARIANT,
        "packages": sorted(packages),
        "disk_size": DISK_SIZE,
        "files": ROOTFS_FILES,
        "layout": LAYOUT_VERSION,
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def cache_root() -> Path:
    """Where images are cached; ``OPENSTACK_K8S_VM_CACHE`` overrides the XDG default."""
    override = os.environ.get("OPENSTACK_K8S_VM_CACHE")
    if override:
        return Path(override)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "openstack-k8s" / "vm-image"


def _load(directory: Path) -> Image | None:
    """The finished image in ``directory``, or None when it is not a complete one."""
    try:
        manifest = json.loads((directory / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    image = Image(
        directory=directory,
        disk=directory / "disk.raw",
        kernel=directory / "vmlinuz",
        initrd=directory / "initrd.img",
        manifest=manifest,
    )
    if all(p.is_file() and p.stat().st_size > 0 for p in (image.disk, image.kernel, image.initrd)):
        return image
    return None


def _mounts_under(path: Path) -> list[str]:
    """Mount points below ``path`` (debootstrap mounts /proc and /sys in the target)."""
    prefix = str(path.resolve()) + "/"
    points = []
    with open("/proc/self/mounts") as mounts:
        for line in mounts:
            point = line.split()[1].replace("\\040", " ")
            if point.startswith(prefix):
                points.append(point)
    return sorted(points, key=len, reverse=True)


def _remove_build_dir(path: Path) -> None:
    """Delete a (possibly killed) build directory, unmounting what debootstrap left mounted.

    Never rmtree through a live /proc or /sys mount: unmount first, and refuse when that fails.
    """
    for point in _mounts_under(path):
        subprocess.run(["umount", "-l", point], check=False)
    left = _mounts_under(path)
    if left:
        raise ImageBuildError(f"cannot remove {path}: still mounted: {left}")
    shutil.rmtree(path, ignore_errors=True)


def die_with_parent() -> None:
    """preexec_fn: the child gets SIGKILL when the process that started it dies.

    Fixtures stop what they started in a finally (failures, timeouts, Ctrl-C); this covers the
    rest (pytest SIGKILLed, or SIGTERMed by a CI timeout): no VM outlives its test run, and no
    orphaned debootstrap keeps writing into a build directory the next build is deleting.
    """
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no {path})"


def _run(cmd: list[str], log: Path, timeout: float) -> None:
    """Run a build step, its output appended to ``log``; fail with the log's tail."""
    with open(log, "ab") as out:
        out.write(f"\n$ {' '.join(cmd)}\n".encode())
        out.flush()
        try:
            subprocess.run(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                check=True,
                timeout=timeout,
                preexec_fn=die_with_parent,
            )
        except subprocess.TimeoutExpired:
            raise ImageBuildError(
                f"{cmd[0]} did not finish within {timeout:.0f} s; last output:\n{_tail(log)}"
            ) from None
        except subprocess.CalledProcessError as err:
            raise ImageBuildError(
                f"{cmd[0]} failed with exit status {err.returncode}; last output:\n{_tail(log)}"
            ) from None


def _boot_file(rootfs: Path, pattern: str) -> Path:
    found = sorted((rootfs / "boot").glob(pattern))
    if len(found) != 1:
        raise ImageBuildError(f"expected one {pattern} in {rootfs / 'boot'}, found {found}")
    return found[0]


def _build(target: Path, suite: str, packages: tuple[str, ...]) -> None:
    """Build a complete image into ``target`` (a fresh, empty directory)."""
    log = target / "build.log"
    rootfs = target / "rootfs"
    started = time.monotonic()
    deadline = started + BUILD_TIMEOUT
    debootstrap = [
        "debootstrap",
        f"--variant={VARIANT}",
        f"--include={','.join(packages)}",
        suite,
        str(rootfs),
        MIRROR,
    ]
    try:
        _run(debootstrap, log, timeout=deadline - time.monotonic())
    except ImageBuildError as err:
        raise ImageBuildError(
            f"{err}\n--- debootstrap.log ---\n{_tail(rootfs / 'debootstrap' / 'debootstrap.log')}"
        ) from None
    debootstrap_seconds = time.monotonic() - started
    # debootstrap leaves the build host's name and resolver in the rootfs; a cloud image has
    # neither (cloud-init sets the hostname, DHCP the resolver).
    for leftover in ("etc/hostname", "etc/resolv.conf"):
        (rootfs / leftover).unlink(missing_ok=True)
    for name, content in ROOTFS_FILES.items():
        (rootfs / name).write_text(content)
    shutil.copyfile(_boot_file(rootfs, "vmlinuz-*"), target / "vmlinuz")
    shutil.copyfile(_boot_file(rootfs, "initrd.img-*"), target / "initrd.img")
    _run(
        [
            "mkfs.ext4",
            "-q",
            "-F",
            "-L",
            "root",
            "-d",
            str(rootfs),
            str(target / "disk.raw"),
            DISK_SIZE,
        ],
        log,
        timeout=max(60.0, deadline - time.monotonic()),
    )
    manifest = {
        "suite": suite,
        "variant": VARIANT,
        "mirror": MIRROR,
        "packages": list(packages),
        "kernel": _boot_file(rootfs, "vmlinuz-*").name,
        "debootstrap_seconds": round(debootstrap_seconds, 1),
        "build_seconds": round(time.monotonic() - started, 1),
    }
    _remove_build_dir(rootfs)
    # Written last: a directory without a manifest is never taken for a finished image.
    (target / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


# Host tools the harness runs, and the Debian package each comes from.
HOST_TOOLS = {
    "debootstrap": "debootstrap",
    "mkfs.ext4": "e2fsprogs",
    "qemu-system-x86_64": "qemu-system-x86",
    "qemu-img": "qemu-utils",
    "cloud-localds": "cloud-image-utils",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
}


def preflight() -> list[str]:
    """What is missing on this host to build an image and boot a VM (empty: nothing)."""
    problems = [
        f"{tool} not found (Debian package {package})"
        for tool, package in HOST_TOOLS.items()
        if not shutil.which(tool)
    ]
    if os.geteuid() != 0:
        problems.append("not root: debootstrap and mkfs.ext4 -d of a root-owned tree need root")
    return problems


def ensure_image(suite: str = SUITE, packages: tuple[str, ...] = PACKAGES) -> Image:
    """Return the cached image for (suite, packages), building it first when there is none.

    Concurrent callers serialize on a lock file; the second one finds the first one's image.
    """
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    key = image_key(suite, packages)
    final = root / key
    image = _load(final)
    if image:
        return image
    with open(root / f".lock-{key}", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        image = _load(final)
        if image:
            return image
        # Holding the lock, any build directory for this key belongs to a builder that died.
        for stale in root.glob(f".tmp-{key}-*"):
            _remove_build_dir(stale)
        if final.exists():  # an incomplete entry (e.g. made by hand): never trust it
            _remove_build_dir(final)
        target = root / f".tmp-{key}-{os.getpid()}"
        target.mkdir()
        try:
            _build(target, suite, packages)
            os.rename(target, final)
        except BaseException:
            _remove_build_dir(target)
            raise
    image = _load(final)
    if image is None:
        raise ImageBuildError(f"built {final} but it is not a complete image")
    return image

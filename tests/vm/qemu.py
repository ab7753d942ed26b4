"""One test VM under qemu: TCG, a copy-on-write overlay, user-mode NAT, console to a file.

The guest gets exactly the private address the plan gave the node: qemu's user-mode network
is set to the node's subnet and its DHCP pool starts at that address, so certificates and
configs naming the address are exercised as they would be on OpenStack. The gateway and DNS
of the user-mode network take other addresses of the same subnet (the first free host
addresses, as an OpenStack subnet's gateway usually is).

The host only ever talks to 127.0.0.1: guest ports are forwarded to free local ports. The
guest reaches Debian's archive through qemu's NAT (its apt needs it).

TCG, not KVM: /dev/kvm exists on these machines but a stock Debian kernel dies under it with
"emulation failure".
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from tests.vm import console
from tests.vm.image import Image, die_with_parent
from tests.vm.seed import write_seed

T = TypeVar("T")

MAC = "52:54:00:6b:38:01"
KERNEL_ARGS = "root=/dev/vda rw console=ttyS0 net.ifnames=0"


class VmError(AssertionError):
    """A bounded wait on the VM failed; the message ends with the console's tail."""


def slirp_addresses(address: ipaddress.IPv4Interface) -> dict[str, str]:
    """qemu ``-nic user`` options that make its DHCP hand out exactly ``address``.

    >>> slirp_addresses(ipaddress.IPv4Interface("10.0.0.5/24"))
    {'net': '10.0.0.0/24', 'host': '10.0.0.1', 'dns': '10.0.0.2', 'dhcpstart': '10.0.0.5'}
    """
    free = (ip for ip in address.network.hosts() if ip != address.ip)
    host, dns = next(free), next(free)
    return {
        "net": str(address.network),
        "host": str(host),
        "dns": str(dns),
        "dhcpstart": str(address.ip),
    }


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (qemu binds it a moment later)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Vm:
    """A VM booted from a cached image with a NoCloud seed; use :func:`running_vm`."""

    def __init__(
        self,
        image: Image,
        workdir: Path,
        user_data: Path,
        *,
        name: str,
        address: ipaddress.IPv4Interface,
        guest_ports: tuple[int, ...] = (22,),
        memory_mb: int = 1024,
        cpus: int = 2,
    ) -> None:
        self.image = image
        self.workdir = workdir
        self.user_data = user_data
        self.name = name
        self.address = address
        self.guest_ports = guest_ports
        self.memory_mb = memory_mb
        self.cpus = cpus
        self.console_log = workdir / "console.log"
        self.qemu_log = workdir / "qemu.log"
        self.qmp_socket = workdir / "qmp.sock"
        self.ports: dict[int, int] = {}
        self.process: subprocess.Popen | None = None
        self.started_at = 0.0

    # --- lifecycle -------------------------------------------------------------------------

    def command(self) -> list[str]:
        overlay = self.workdir / "overlay.qcow2"
        seed = self.workdir / "seed.iso"
        nic = {"model": "virtio-net-pci", "mac": MAC, **slirp_addresses(self.address)}
        forwards = [f"hostfwd=tcp:127.0.0.1:{h}-:{g}" for g, h in self.ports.items()]
        return [
            "qemu-system-x86_64",
            "-name", self.name,
            "-accel", "tcg",
            "-cpu", "max",
            "-m", str(self.memory_mb),
            "-smp", str(self.cpus),
            "-kernel", str(self.image.kernel),
            "-initrd", str(self.image.initrd),
            "-append", KERNEL_ARGS,
            "-drive", f"file={overlay},if=virtio,format=qcow2",
            "-drive", f"file={seed},if=virtio,format=raw,readonly=on",
            "-nic", ",".join(["user", *(f"{k}={v}" for k, v in nic.items()), *forwards]),
            "-device", "virtio-rng-pci",
            "-serial", f"file:{self.console_log}",
            "-qmp", f"unix:{self.qmp_socket},server=on,wait=off",
            "-display", "none",
            "-monitor", "none",
        ]  # fmt: skip

    def start(self) -> None:
        """Make the overlay and the seed, then start qemu (returns at once)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(self.image.disk), "-F", "raw",
             str(self.workdir / "overlay.qcow2")],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        write_seed(
            self.workdir, self.user_data, instance_id=f"i-{self.name}", hostname=self.name, mac=MAC
        )
        self.ports = {guest: free_port() for guest in self.guest_ports}
        with open(self.qemu_log, "wb") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )
        self.started_at = time.monotonic()

    def stop(self) -> None:
        """Stop the qemu this object started, by its PID: SIGTERM, then SIGKILL."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)

    def host_port(self, guest_port: int) -> int:
        return self.ports[guest_port]

    # --- observing -------------------------------------------------------------------------

    def console_text(self) -> str:
        return console.read(self.console_log)

    def describe(self, lines: int = 60) -> str:
        """The console's tail (and qemu's own output when it exited), for failure messages."""
        parts = [
            f"--- console tail ({self.console_log}) ---",
            console.tail(self.console_text(), lines),
        ]
        qemu_output = console.read(self.qemu_log).strip()
        if qemu_output:
            parts += ["--- qemu output ---", console.tail(qemu_output, 20)]
        return "\n".join(parts)

    def check_alive(self) -> None:
        """Fail at once when qemu exited or the guest cannot boot, instead of waiting it out."""
        if self.process is None or self.process.poll() is not None:
            code = None if self.process is None else self.process.returncode
            raise VmError(f"qemu is not running (exit status {code})\n{self.describe()}")
        line = console.fatal(self.console_text())
        if line:
            raise VmError(f"the guest cannot boot: {line}\n{self.describe()}")

    def wait_for(
        self, what: str, probe: Callable[[], T | None], timeout: float, interval: float = 2.0
    ) -> T:
        """Poll ``probe`` until it returns something other than None; bounded by ``timeout``."""
        deadline = time.monotonic() + timeout
        last_error = ""
        while True:
            self.check_alive()
            try:
                result = probe()
            except Exception as err:  # noqa: BLE001 - a probe failing is "not yet"
                result, last_error = None, f"{type(err).__name__}: {err}"
            if result is not None:
                return result
            if time.monotonic() >= deadline:
                hint = f"\nlast probe error: {last_error}" if last_error else ""
                raise VmError(
                    f"timed out after {timeout:.0f} s waiting for {what}{hint}\n{self.describe()}"
                )
            time.sleep(interval)

    def wait_cloud_init_finished(self, boot: int, timeout: float) -> console.Finished:
        """Wait for cloud-init's final line on the ``boot``-th boot (1-based) of this VM."""

        def probe() -> console.Finished | None:
            boots = console.boots(self.console_text())
            return console.finished(boots[boot - 1]) if len(boots) >= boot else None

        return self.wait_for(f"cloud-init to finish on boot {boot}", probe, timeout)

    def boot_count(self) -> int:
        return len(console.boots(self.console_text()))

    # --- acting ----------------------------------------------------------------------------

    def qmp(self, command: str) -> dict:
        """Run one QMP command (e.g. ``system_reset``) and return its reply."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(10)
            sock.connect(str(self.qmp_socket))
            stream = sock.makefile("rw")
            json.loads(stream.readline())  # greeting
            for execute in ("qmp_capabilities", command):
                stream.write(json.dumps({"execute": execute}) + "\n")
                stream.flush()
                while True:
                    reply = json.loads(stream.readline())
                    if "event" not in reply:
                        break
            return reply


class Ssh:
    """SSH into the guest through its forwarded port with a key the test generated."""

    def __init__(self, vm: Vm, user: str, key: Path) -> None:
        self.vm, self.user, self.key = vm, user, key

    def argv(self, command: str) -> list[str]:
        return [
            "ssh", "-i", str(self.key), "-p", str(self.vm.host_port(22)),
            "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=10",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR",
            f"{self.user}@127.0.0.1", command,
        ]  # fmt: skip

    def run(
        self, command: str, timeout: float = 60, check: bool = True
    ) -> subprocess.CompletedProcess:
        result = subprocess.run(self.argv(command), capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise VmError(
                f"ssh {command!r} exited {result.returncode}\nstdout: {result.stdout}\n"
                f"stderr: {result.stderr}\n{self.vm.describe(30)}"
            )
        return result

    def wait(self, timeout: float) -> None:
        """Wait until a login with the key works (sshd up and the key installed)."""
        self.vm.wait_for(
            f"ssh as {self.user} with the test key",
            lambda: True if self.run("true", timeout=30, check=False).returncode == 0 else None,
            timeout,
            interval=3,
        )


@contextlib.contextmanager
def running_vm(image: Image, workdir: Path, user_data: Path, **kwargs) -> Iterator[Vm]:
    """A started VM, stopped by its PID when the block ends, whatever happened in it."""
    vm = Vm(image, workdir, user_data, **kwargs)
    try:
        vm.start()
        yield vm
    finally:
        vm.stop()


def keygen(directory: Path) -> tuple[Path, str]:
    """A fresh ed25519 key pair for this test run: (private key path, public key line)."""
    key = directory / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "openstack-k8s-vm-test", "-f", str(key)],
        check=True, timeout=30,
    )  # fmt: skip
    os.chmod(key, 0o600)
    return key, key.with_suffix(".pub").read_text().strip()

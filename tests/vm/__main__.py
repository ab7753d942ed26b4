"""Boot a user-data file in a test VM by hand, to debug a node's cloud-config.

    python -m tests.vm USER_DATA --address 10.0.0.5/24 [--name dev-discovery-0] [--keep]
    python -m tests.vm --sample            # the harness's own TLS-etcd smoke user-data

Prints the forwarded ports and an ssh command line, waits for cloud-init's final line, prints
``cloud-init status --long``, and with ``--keep`` stays up until Ctrl-C. The VM is stopped by
its PID on exit, whatever happens.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
import tempfile
import time
from pathlib import Path

from tests.vm import image as vm_image
from tests.vm import qemu, sample


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.vm", description=__doc__.split("\n")[0])
    parser.add_argument("user_data", nargs="?", type=Path, help="cloud-config file to boot as is")
    parser.add_argument(
        "--sample", action="store_true", help="boot the harness's own smoke user-data"
    )
    parser.add_argument(
        "--address", default="10.0.0.5/24", help="the node's private address/prefix"
    )
    parser.add_argument("--name", default="vm-test-0", help="instance name (hostname, instance id)")
    parser.add_argument(
        "--ssh-key", type=Path, help="private key whose public key the user-data installs"
    )
    parser.add_argument("--user", default="debian", help="ssh login user (Debian's default user)")
    parser.add_argument("--keep", action="store_true", help="stay up after cloud-init finished")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for cloud-init")
    args = parser.parse_args(argv)
    if bool(args.user_data) == args.sample:
        parser.error("give a USER_DATA file or --sample (one of them)")
    address = ipaddress.IPv4Interface(args.address)

    started = time.monotonic()
    image = vm_image.ensure_image()
    print(f"image {image.directory} ready in {time.monotonic() - started:.1f} s", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="vm-test-"))
    key = args.ssh_key
    user_data = args.user_data
    if args.sample:
        key, public = qemu.keygen(workdir)
        pki = sample.write_pki(workdir / "pki", address.ip)
        user_data = workdir / "sample-user-data.yaml"
        user_data.write_text(sample.user_data(pki, address.ip, "10.244.0.0/16", public))
        print(f"sample PKI (CA, client cert) in {workdir / 'pki'}")
    with qemu.running_vm(
        image, workdir, user_data, name=args.name, address=address, guest_ports=(22, 2379)
    ) as vm:
        print(f"qemu pid {vm.process.pid}; console {vm.console_log}")
        print(f"etcd: 127.0.0.1:{vm.host_port(2379)}  ssh: 127.0.0.1:{vm.host_port(22)}")
        if key:
            print("ssh: " + " ".join(qemu.Ssh(vm, args.user, key).argv("")[:-1]))
        done = vm.wait_cloud_init_finished(1, args.timeout)
        print(
            f"cloud-init {done.version} finished at guest uptime {done.uptime_seconds:.1f} s "
            f"({time.monotonic() - vm.started_at:.1f} s wall)"
        )
        if key:
            ssh = qemu.Ssh(vm, args.user, key)
            ssh.wait(120)
            print(ssh.run("cloud-init status --long", check=False).stdout)
        if args.keep:
            print("up; Ctrl-C stops it")
            try:
                while vm.process.poll() is None:
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

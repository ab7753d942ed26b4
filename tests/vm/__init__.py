"""Boot a node's real user-data in a real VM: Debian 12 under qemu (TCG), NoCloud seed.

The pieces, one module each:

- ``image``: a Debian 12 root filesystem made with debootstrap, turned into a raw ext4 disk,
  cached between runs under a key derived from the suite and the package list, built
  atomically (a killed build never leaves an image that later runs trust).
- ``seed``: the NoCloud seed ISO (user-data byte for byte, meta-data, network-config v2).
- ``qemu``: one VM on a copy-on-write overlay of the cached disk, user-mode networking that
  hands the guest exactly the address the plan gave the node, forwarded ports on 127.0.0.1,
  serial console to a file; stopped by the PID it started.
- ``console``: reading the serial console (cloud-init's final line, tails for failure messages).

``python -m tests.vm --help`` boots any user-data by hand, for debugging a node's cloud-config.
"""

"""What the jump host (the discovery node) runs on behalf of the private nodes behind it."""

from __future__ import annotations

import ipaddress

# Waits, on the jump host, until a node's sshd sends its banner (see the script's header).
WAIT_SSHD_SCRIPT = "discovery-wait-sshd.sh"


def wait_sshd_env(address: str, *, port: int = 22, timeout: int = 300) -> dict[str, str]:
    """The environment of discovery-wait-sshd.sh for the node at `address`."""
    ipaddress.ip_address(address)  # raises with the bad value in the message
    if not 1 <= port <= 65535:
        raise ValueError(f"port: {port} is not a TCP port (1-65535)")
    if timeout <= 0:
        raise ValueError(f"timeout: {timeout} must be a positive number of seconds")
    return {"TARGET_HOST": address, "TARGET_PORT": str(port), "SSH_WAIT_TIMEOUT": str(timeout)}

"""Command names and roles: every name the program builds reads back as its role."""

from __future__ import annotations

import pytest

from components.roles import GENERATIONAL, Role, command_name, role_of


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize(
    "owner", ["dev-master-0", "dev-worker-upgrade-12", "dev-discovery-2", "dev"]
)
def test_every_name_reads_back(owner, role):
    generation = 7 if role in GENERATIONAL else None
    name = command_name(owner, role, generation)
    assert name.startswith(f"{owner}-") and role_of(name) is role


def test_longer_roles_win_and_other_names_have_none():
    assert role_of("dev-master-0-upgrade-credential") is Role.UPGRADE_CREDENTIAL
    # A pool named like a role: its instances and ports are not commands.
    assert role_of("dev-worker-join-0") is None and role_of("dev-worker-join-0-port") is None
    assert role_of("dev-master-0-encryption-add") is Role.ENCRYPTION_ADD
    assert role_of("dev-master-0") is None

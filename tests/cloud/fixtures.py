"""The session fixture for the local OpenStack (see local_openstack.py)."""

from __future__ import annotations

import os

import pytest

from cloud import local_openstack


@pytest.fixture(scope="session")
def openstack_cloud():
    """A running local OpenStack (LocalCloud: `.env`, `.connect()`). Started if none is
    running, and then stopped at the end of the session, checking that nothing is left; one
    that was already running (started by CI or by hand) is reused and left running. Under
    xdist a worker never stops it: another worker may still be using it."""
    cloud = local_openstack.ensure_started()
    yield cloud
    if cloud.started_here and "PYTEST_XDIST_WORKER" not in os.environ:
        local_openstack.stop_and_check()

"""node-network-policy.sh, fed the way its command feeds it: with network policy turned off
it removes what Calico's install-cni left in the CNI directory, and only that."""

from __future__ import annotations

import subprocess

import pytest

from addons.calico import CNI_CONF_NAME, CNI_FILES
from components.commands import stdin_text


def run(net_d, **env) -> subprocess.CompletedProcess:
    values = {"CNI_CONF_DIR": str(net_d), "CNI_FILES": " ".join(CNI_FILES), **env}
    return subprocess.run(
        ["bash", "-s"],
        input=stdin_text("node-network-policy.sh", values),
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.fixture
def net_d(tmp_path):
    d = tmp_path / "net.d"
    d.mkdir()
    for name in (*CNI_FILES, "10-flannel.conflist"):
        (d / name).write_text("{}\n")
    return d


def test_off_removes_calicos_files_and_keeps_the_nodes_own(net_d):
    p = run(net_d, NETWORK_POLICY="false")
    assert p.returncode == 0, p.stderr
    assert sorted(f.name for f in net_d.iterdir()) == ["10-flannel.conflist"]
    assert f"removed {net_d}/{CNI_CONF_NAME}" in p.stderr and "restart the pods" in p.stderr
    again = run(net_d, NETWORK_POLICY="false")
    assert again.returncode == 0 and "no Calico CNI files" in again.stderr


def test_on_leaves_everything(net_d):
    p = run(net_d, NETWORK_POLICY="true")
    assert p.returncode == 0, p.stderr
    assert len(list(net_d.iterdir())) == 3 and "installs its CNI files itself" in p.stderr


@pytest.mark.parametrize(
    "env,why",
    [
        ({"NETWORK_POLICY": "yes"}, "must be true or false"),
        ({"NETWORK_POLICY": "false", "CNI_FILES": ""}, "CNI_FILES is not set"),
        ({"NETWORK_POLICY": "false", "CNI_FILES": "../10-flannel.conflist"}, "names files in"),
    ],
)
def test_bad_input_changes_nothing(net_d, env, why):
    p = run(net_d, **env)
    assert p.returncode == 2 and why in p.stderr
    assert len(list(net_d.iterdir())) == 3

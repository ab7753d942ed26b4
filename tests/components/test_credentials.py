"""The OpenStack application credentials the in-cluster integration and the etcd backups
use: made by the program, or given in config. Keystone lets a restricted application
credential (what `openstack application credential create` makes, and what CI logs in
with) make no other, so a run that logs in with one and would make one is refused before
anything is registered, naming the key to set (docs/ci.md)."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import settings
from planning import ROOT

CREDENTIAL = "openstack:identity/applicationCredential:ApplicationCredential"
BASE = {
    "clusterName": "t",
    "externalNetwork": "public",
    "image": "debian-12",
    "sshAllowedCidrs": ["192.0.2.0/24"],
}
GIVEN_ADDONS = {
    "applicationCredential": "given",
    "applicationCredentialId": "cafe01",
    "applicationCredentialSecret": "s3cret",
}
GIVEN_BACKUP = {
    "container": "etcd-snapshots",
    "applicationCredential": "given",
    "applicationCredentialId": "beef02",
    "applicationCredentialSecret": "b4ckup",
}


def load(**extra):
    return settings.load({**BASE, **extra})


@pytest.mark.parametrize(
    "backup,message",
    [
        (
            {"container": "c", "applicationCredential": "given", "applicationCredentialId": "x"},
            "etcd.backup.applicationCredentialSecret: is required when "
            "etcd.backup.applicationCredential is given",
        ),
        (
            {"container": "c", "applicationCredentialId": "x"},
            "etcd.backup.applicationCredentialId: is only used with "
            "etcd.backup.applicationCredential: given",
        ),
        (
            {k: v for k, v in GIVEN_BACKUP.items() if k != "container"},
            "etcd.backup.applicationCredential: is given, but snapshots stay on the nodes "
            "without etcd.backup.container",
        ),
    ],
)
def test_a_given_backup_credential_is_whole_and_used(backup, message):
    with pytest.raises(settings.ConfigError) as e:
        load(etcd={"backup": backup})
    assert str(e.value).startswith(f"openstack-k8s:{message}"), str(e.value)
    assert "\n" not in str(e.value)


def test_a_given_backup_secret_must_be_a_secret():
    raw = {**BASE, "etcd": {"backup": GIVEN_BACKUP}}
    with pytest.raises(
        settings.ConfigError,
        match=r"^openstack-k8s:etcd\.backup\.applicationCredentialSecret: is a secret in plain text",
    ):
        settings.load(raw, "dev", secret_keys=set())
    s = settings.load(raw, "dev", secret_keys={"openstack-k8s:etcd"})
    assert s.etcd.backup.application_credential_secret == "b4ckup"


def test_created_credentials_say_which_keys_make_one():
    assert load().created_credentials == ["openstack.applicationCredential"]
    assert load(etcd={"backup": {"container": "c"}}).created_credentials == [
        "openstack.applicationCredential",
        "etcd.backup.applicationCredential",
    ]
    assert load(openstack=GIVEN_ADDONS, etcd={"backup": GIVEN_BACKUP}).created_credentials == []
    # Neither the cloud controller nor Cinder CSI: nothing reads the credential.
    off = {"cloudController": {"enabled": False}, "csi": {"enabled": False}}
    assert load(**off, metricsServer={"enabled": False}).created_credentials == []


def _clouds(tmp_path: Path, name: str, clouds: dict) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"clouds": clouds}))  # JSON is YAML
    return path


def test_an_application_credential_login_is_recognised(tmp_path):
    """From the provider's own config, the OS_* variables an openrc or CI sets, or the
    clouds.yaml entry OS_CLOUD names (the first file that names it, as gophercloud reads)."""
    login = settings.application_credential_login
    assert login({}, {}, []) is None
    assert login({"OS_AUTH_URL": "u", "OS_PASSWORD": "p"}, {}, []) is None
    assert login({"OS_AUTH_TYPE": "v3applicationcredential"}, {}, []) == (
        "OS_AUTH_TYPE is v3applicationcredential"
    )
    assert login({"OS_APPLICATION_CREDENTIAL_ID": "i"}, {}, []) == (
        "OS_APPLICATION_CREDENTIAL_ID is set"
    )
    assert login({}, {"openstack:applicationCredentialId": "i"}, []) == (
        "openstack:applicationCredentialId is set"
    )
    first = _clouds(tmp_path, "a.yaml", {"ci": {"auth_type": "v3applicationcredential"}})
    second = _clouds(tmp_path, "b.yaml", {"me": {"auth": {"password": "p"}}})
    files = [tmp_path / "missing.yaml", first, second]
    assert login({"OS_CLOUD": "ci"}, {}, files) == (
        f"cloud ci in {first} has auth_type v3applicationcredential"
    )
    assert login({}, {"openstack:cloud": "ci"}, files) is not None
    assert login({"OS_CLOUD": "me"}, {}, files) is None
    # The first file naming the cloud is the one used.
    shadow = _clouds(tmp_path, "c.yaml", {"ci": {"auth": {"password": "p"}}})
    assert login({"OS_CLOUD": "ci"}, {}, [shadow, first]) is None
    assert settings.clouds_files({"OS_CLIENT_CONFIG_FILE": str(first)})[0] == first


def test_making_a_credential_under_a_credential_login_is_refused():
    with pytest.raises(settings.ConfigError) as e:
        settings.check_login(load(), "OS_AUTH_TYPE is v3applicationcredential")
    text = str(e.value)
    assert text.startswith("openstack-k8s:openstack.applicationCredential: is create, but this ")
    assert "--unrestricted" in text and "docs/ci.md" in text and "\n" not in text
    with pytest.raises(settings.ConfigError, match=r"^openstack-k8s:etcd\.backup\."):
        settings.check_login(load(openstack=GIVEN_ADDONS, etcd={"backup": {"container": "c"}}), "x")
    settings.check_login(load(), None)
    settings.check_login(load(openstack=GIVEN_ADDONS, etcd={"backup": GIVEN_BACKUP}), "x")


PROGRAM = """
import pulumi.runtime.settings as runtime
import settings
runtime._set_stack("ci")
s = settings.from_pulumi()
print(s.name)
"""


def _from_pulumi(tmp_path: Path, config: dict, os_env: dict, secret_keys: list | None):
    """settings.from_pulumi() as the language host runs it: config in PULUMI_CONFIG, the
    secret keys in PULUMI_CONFIG_SECRET_KEYS (only under the CLI), no OS_* or clouds.yaml
    but the ones given (HOME is empty)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PULUMI_", "OS_", "HOME"))}
    env |= {"HOME": str(tmp_path), "PULUMI_CONFIG": json.dumps(config), **os_env}
    if secret_keys is not None:
        env["PULUMI_CONFIG_SECRET_KEYS"] = json.dumps(secret_keys)
    return subprocess.run(
        [sys.executable, "-c", PROGRAM], cwd=ROOT, env=env, capture_output=True, text=True
    )


CONFIG = {f"openstack-k8s:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in BASE.items()}
CI_LOGIN = {
    "OS_AUTH_TYPE": "v3applicationcredential",
    "OS_APPLICATION_CREDENTIAL_ID": "ci",
    "OS_APPLICATION_CREDENTIAL_SECRET": "ci-secret",
}


def test_the_cli_refuses_before_anything_when_ci_would_make_a_credential(tmp_path):
    """What docs/ci.md used to do: CI logs in with an application credential and the stack
    says create. Refused with one line naming the key; the same login with the credentials
    given, and a password login with create, run."""
    out = _from_pulumi(tmp_path, CONFIG, CI_LOGIN, [])
    assert out.returncode != 0
    assert "openstack-k8s:openstack.applicationCredential: is create, but this run logs in" in (
        out.stderr
    )
    given = {**CONFIG, "openstack-k8s:openstack": json.dumps(GIVEN_ADDONS)}
    ok = _from_pulumi(tmp_path, given, CI_LOGIN, ["openstack-k8s:openstack"])
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "t"
    password = _from_pulumi(tmp_path, CONFIG, {"OS_AUTH_URL": "u", "OS_PASSWORD": "p"}, [])
    assert password.returncode == 0, password.stderr
    # The offline plan (no CLI, no secret keys) logs in nowhere: the same shell plans.
    offline = _from_pulumi(tmp_path, CONFIG, CI_LOGIN, None)
    assert offline.returncode == 0, offline.stderr


def test_given_credentials_make_none(plan):
    """Both credentials given: no ApplicationCredential resource, and the given ids reach
    the cloud.conf Secret and the etcd backup's openrc."""
    p = plan(
        "dev",
        *(f"openstack.{k}={v}" for k, v in GIVEN_ADDONS.items()),
        *(f"etcd.backup.{k}={v}" for k, v in GIVEN_BACKUP.items()),
    )
    assert not p.of_type(CREDENTIAL)
    raw = p.raw(["dev-addons-secret-cloud-config", "dev-master-0-etcd-backup"])
    conf = raw["dev-addons-secret-cloud-config"]["stringData"]["cloud.conf"]
    assert "application-credential-id = cafe01" in conf
    assert "application-credential-secret = s3cret" in conf
    stdin = raw["dev-master-0-etcd-backup"]["stdin"]
    b64 = re.search(r"^export BUNDLE_TAR_B64=(\S+)$", stdin, re.M).group(1).strip("'")
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(b64)), mode="r:gz") as tar:
        files = {m.name: tar.extractfile(m).read().decode() for m in tar.getmembers()}
    (openrc,) = [text for name, text in files.items() if name.endswith("openrc")]
    assert "OS_APPLICATION_CREDENTIAL_ID='beef02'" in openrc
    assert "OS_APPLICATION_CREDENTIAL_SECRET='b4ckup'" in openrc
    made = plan("dev", "etcd.backup.container=etcd-snapshots")
    assert sorted(r["name"] for r in made.of_type(CREDENTIAL)) == [
        "dev-addons-openstack",
        "dev-etcd-backup",
    ]


def test_docs_ci_quotes_the_refusal_as_the_program_says_it():
    """docs/ci.md shows the line a CI run gets; it must be the program's own."""
    try:
        settings.check_login(load(), "OS_AUTH_TYPE is v3applicationcredential")
    except settings.ConfigError as e:
        message = str(e)
    else:
        pytest.fail("not refused")
    assert f"    {message}\n" in (ROOT / "docs" / "ci.md").read_text()

"""cloud.conf: the INI file openstack-cloud-controller-manager and Cinder CSI read.

Both programs parse it with gcfg (git-config syntax). It is built here as data with
configparser, never templated, and travels only inside a Kubernetes Secret (see
addons.manifests.cloud_conf_secret): the caller wraps the result in a secret Output.

Credentials are always an application credential (`openstack.applicationCredential`:
`create` makes one for this cluster, `given` takes its id and secret from stack secrets):
auth = {auth_url, application_credential_id, application_credential_secret}. A user's
password never reaches the cluster.
"""

import configparser
import io
import re

AUTH_KEYS = ("auth_url", "application_credential_id", "application_credential_secret")

# gcfg ends a value at ';' or '#', trims blanks and interprets backslashes, so any value
# outside this plain alphabet is written double-quoted with '\\' and '"' escaped.
_PLAIN = re.compile(r"^[A-Za-z0-9._:/@+=,\-]*$")


def _gcfg_value(key: str, value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if "\n" in text or "\r" in text or "\0" in text:
        raise ValueError(f"cloud.conf: {key} must be a single line")
    if _PLAIN.match(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


def _global(auth: dict, region: str | None, ca_file: str | None) -> dict:
    for key in AUTH_KEYS:
        if not auth.get(key):
            raise ValueError(f"auth: {key} is required")
    if set(auth) - set(AUTH_KEYS):
        raise ValueError(f"auth: only {', '.join(AUTH_KEYS)} (an application credential)")
    section = {
        "auth-url": auth["auth_url"],
        "application-credential-id": auth["application_credential_id"],
        "application-credential-secret": auth["application_credential_secret"],
    }
    if region:
        section["region"] = region
    if ca_file:
        section["ca-file"] = ca_file
    return section


def cloud_conf_sections(
    *,
    auth: dict,
    region: str | None,
    subnet_id: str,
    floating_network_id: str,
    lb_enabled: bool,
    lb_provider: str = "amphora",
    create_monitor: bool = True,
    ignore_volume_az: bool = False,
    ca_file: str | None = None,
) -> dict:
    """cloud.conf as {section: {key: value}} before rendering (for callers and tests)."""
    if lb_enabled:
        if not subnet_id:
            raise ValueError("cloud.conf: subnet_id is required for LoadBalancer Services")
        if not floating_network_id:
            raise ValueError(
                "cloud.conf: floating_network_id is required for LoadBalancer Services"
            )
        load_balancer = {
            "enabled": True,
            "floating-network-id": floating_network_id,
            "subnet-id": subnet_id,
            "lb-provider": lb_provider,
            # Octavia health monitors let a Service with externalTrafficPolicy: Local
            # send traffic only to nodes that run its endpoints.
            "create-monitor": create_monitor,
        }
        if lb_provider == "ovn":
            # OVN load balancers keep the client's address: traffic reaches the nodes from
            # anywhere, and only the CCM knows which NodePorts a Service opened.
            load_balancer["manage-security-groups"] = True
    else:
        # Clouds without Octavia: the CCM still manages nodes, but refuses LB Services.
        load_balancer = {"enabled": False}
    return {
        "Global": _global(auth, region, ca_file),
        "LoadBalancer": load_balancer,
        "BlockStorage": {
            # Grow the filesystem of an attached volume after a resize.
            "rescan-on-resize": True,
            # Clouds whose Cinder AZs do not match Nova AZs set this.
            "ignore-volume-az": ignore_volume_az,
        },
        "Metadata": {
            # Config drive first: works before the metadata service is reachable.
            "search-order": "configDrive,metadataService",
        },
    }


def cloud_conf(**settings) -> str:
    """Render cloud.conf (INI, gcfg-compatible) from cloud_conf_sections' keywords.
    Deterministic: same input, same text."""
    sections = cloud_conf_sections(**settings)
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keep keys exactly as gcfg expects them
    for name, values in sections.items():
        parser[name] = {key: _gcfg_value(f"{name}.{key}", value) for key, value in values.items()}
    out = io.StringIO()
    parser.write(out)
    return out.getvalue()


def read_cloud_conf(text: str) -> dict:
    """Parse rendered cloud.conf back into {section: {key: unquoted value}}."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read_string(text)
    return {s: {k: _unquote(v) for k, v in parser[s].items()} for s in parser.sections()}

"""Remote commands: how the program reaches nodes, and how a node script becomes a Command.

Every command runs a shell file from cloud_init/scripts/ with `sudo bash -s`, the script on
stdin after `export KEY='value'` lines. Secrets (join configs, tokens) thus never appear on a
command line, in `ps`, or in logs, and stdin is a secret whenever one of its values is.
Private nodes are reached through the discovery node as SSH proxy with the deploy key.
"""

from __future__ import annotations

import base64
import math
import re
import shlex
from dataclasses import dataclass
from collections.abc import Mapping, Sequence

import pulumi
from pulumi_command import remote

from cloud_init import script
from components.roles import Mode, Role, Step, command_name

# The account cloud-init creates on every node for operators and for these commands.
SSH_USER = "k8s"
# A VM is ACTIVE long before sshd answers: keep dialling, but not forever.
DIAL_ATTEMPTS = 60
DIAL_TIMEOUT = 10
# Re-running what already happened must be harmless; for init and join it must not happen.
NO_OP = "true"
# What a run-once command never updates for: a new script text or jump host address would
# otherwise be an update, and even a no-op update connects (to a node that may be gone).
RUN_ONCE_IGNORED = ["stdin", "connection"]
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Bastion:
    """The operator's SSH bastion: every command goes through it (one proxy hop, the only
    kind pulumi-command has). Without a key, the operator's ssh-agent answers for it."""

    host: str
    user: str
    port: int
    private_key: pulumi.Output[str] | None


@dataclass(frozen=True)
class Access:
    """The deploy key, and the way every remote command goes: through the jump host (the
    discovery node's floating IP), through the operator's bastion, or straight to the node
    when Pulumi runs inside the network."""

    private_key: pulumi.Output[str]
    jump_host: pulumi.Output[str]  # the discovery node: its floating IP, else its own address
    bastion: Bastion | None = None
    direct: bool = False

    def _proxy(self) -> remote.ProxyConnectionArgs | None:
        if self.bastion is not None:
            b = self.bastion
            return remote.ProxyConnectionArgs(
                host=b.host,
                port=b.port,
                user=b.user,
                private_key=b.private_key,
                dial_error_limit=DIAL_ATTEMPTS,
                per_dial_timeout=DIAL_TIMEOUT,
            )
        return None

    def to_jump_host(self) -> remote.ConnectionArgs:
        """The discovery node itself (its first member)."""
        return remote.ConnectionArgs(
            host=self.jump_host,
            user=SSH_USER,
            private_key=self.private_key,
            dial_error_limit=DIAL_ATTEMPTS,
            per_dial_timeout=DIAL_TIMEOUT,
            proxy=self._proxy(),
        )

    def to_node(self, host: pulumi.Input[str]) -> remote.ConnectionArgs:
        proxy = self._proxy()
        if proxy is None and not self.direct:
            proxy = remote.ProxyConnectionArgs(
                host=self.jump_host,
                user=SSH_USER,
                private_key=self.private_key,
                dial_error_limit=DIAL_ATTEMPTS,
                per_dial_timeout=DIAL_TIMEOUT,
            )
        return remote.ConnectionArgs(
            host=host,
            user=SSH_USER,
            private_key=self.private_key,
            dial_error_limit=DIAL_ATTEMPTS,
            per_dial_timeout=DIAL_TIMEOUT,
            proxy=proxy,
        )


Env = Mapping[str, pulumi.Input[str]] | pulumi.Output[dict]


def script_with_env(name: str, env: Env) -> pulumi.Output[str]:
    """`export K='v'` lines, then the script: what `bash -s` reads on the node. The
    environment is a mapping of inputs, or one output that is the whole mapping (built by a
    cloud_init env builder from values known only at deployment)."""
    if isinstance(env, pulumi.Output):
        return env.apply(lambda values: stdin_text(name, values))
    keys = sorted(env)
    return pulumi.Output.all(*[env[k] for k in keys]).apply(
        lambda values: stdin_text(name, dict(zip(keys, values, strict=True)))
    )


def secret_b64(text: pulumi.Output[str]) -> pulumi.Output[str]:
    """A text for a script's environment, base64 (one line, any content) and a secret."""
    return pulumi.Output.secret(text.apply(lambda t: base64.b64encode(t.encode()).decode()))


def stdin_text(name: str, values: Mapping[str, object]) -> str:
    """The text itself, for values already known. The scripts run `main "$@" </dev/null`, so
    nothing they start can read the rest of it."""
    for key in values:
        if not _ENV_NAME.fullmatch(key):
            raise ValueError(f"{key!r} is not a shell variable name")
    return "".join(f"export {k}={shlex.quote(str(values[k]))}\n" for k in sorted(values)) + script(
        name
    )


def _inline(stdin_text: str) -> str:
    """A command line that runs a script without stdin (delete commands)."""
    encoded = base64.b64encode(stdin_text.encode()).decode()
    return f"echo {encoded} | base64 -d | sudo bash -s"


def _timeouts(seconds: int) -> pulumi.CustomTimeouts:
    # The script enforces its own bound; the engine's is a backstop a little beyond it.
    minutes = f"{math.ceil(seconds / 60) + 5}m"
    return pulumi.CustomTimeouts(create=minutes, update=minutes, delete=minutes)


def node_command(
    name: str,
    *,
    connection: remote.ConnectionArgs,
    script_name: str,
    env: Env,
    timeout: int,
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource] = (),
    rerun_on_change: bool = False,
    secret_stdout: bool = False,
    run_on_create: bool = True,
    label: str | None = None,
    instance: pulumi.Resource | None = None,
) -> remote.Command:
    """Run a node script once. With rerun_on_change the script runs again when an input
    changes (it must be idempotent); without, a change of inputs (a new jump host address,
    a newer script) is not even an update: nothing connects, so a node that is gone blocks
    only what concerns it. Without run_on_create, creating the command runs nothing and
    does not even connect. A label is a shell comment on the command line: it shows in
    previews and plans why the command runs again even when its stdin is a secret (and,
    unlike `triggers`, never asks for a replacement).

    With an instance, the command belongs to that VM: when the VM is replaced the command
    is replaced too (its `triggers` hold the instance id), so it runs again on the new VM.
    """
    run = "sudo bash -s" + (f"  # {label}" if label else "")
    return remote.Command(
        name,
        connection=connection,
        create=run if run_on_create else None,
        update=run if rerun_on_change else NO_OP,
        stdin=script_with_env(script_name, env),
        triggers=[instance.id] if instance is not None else None,
        # stdout of secret-bearing commands is a secret and never logged.
        logging=remote.Logging.STDERR if secret_stdout else remote.Logging.STDOUT_AND_STDERR,
        # The previous run's stdout (a token, a key) would otherwise travel in the clear as
        # an environment variable of every update.
        add_previous_output_in_env=False,
        opts=pulumi.ResourceOptions(
            parent=parent,
            depends_on=list(depends_on),
            additional_secret_outputs=["stdout"] if secret_stdout else None,
            custom_timeouts=_timeouts(timeout),
            ignore_changes=None if rerun_on_change else RUN_ONCE_IGNORED,
        ),
    )


def day2_command(name: str, *, label: str, **kwargs) -> remote.Command:
    """A command for a change to a running node: nothing happens when it is created (a new
    node already is what the inputs say), the script runs whenever its inputs change later
    (a new Kubernetes version, a new mirror). The script must be idempotent. The label names
    what it acts on, in the clear."""
    return node_command(name, run_on_create=False, rerun_on_change=True, label=label, **kwargs)


def delete_command(
    name: str,
    *,
    connection: remote.ConnectionArgs,
    script_name: str,
    env: Env,
    timeout: int,
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource] = (),
    instance: pulumi.Resource | None = None,
) -> remote.Command:
    """A command that does nothing until it is deleted: then it runs the script (drain).

    With an instance, replacing that VM replaces this command first: the old node is
    drained (the old command's delete) before its VM goes, and the new command runs
    nothing until the new node leaves in turn."""
    text = script_with_env(script_name, env)
    return remote.Command(
        name,
        connection=connection,
        # Neither create nor update commands: nothing runs, and nothing connects, until delete.
        delete=text.apply(_inline),
        triggers=[instance.id] if instance is not None else None,
        add_previous_output_in_env=False,
        opts=pulumi.ResourceOptions(
            parent=parent, depends_on=list(depends_on), custom_timeouts=_timeouts(timeout)
        ),
    )


def ready_gate(
    node: str,
    *,
    access: Access,
    connection: remote.ConnectionArgs,
    address: pulumi.Output[str],
    instance: pulumi.Resource,
    timeout: int,
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource] = (),
    through_jump_host: bool = True,
) -> remote.Command:
    """`<node>-ready`: wait for cloud-init on the node, bounded. A private node is first
    waited for from the jump host (`<node>-sshd`, until its sshd sends a banner): an SSH
    client retrying through a proxy keeps its failed connection, so dialling a node whose
    sshd is not up yet would fail however many attempts it has left."""
    waits = [instance, *depends_on]
    if through_jump_host:
        waits.append(
            node_command(
                command_name(node, Role.SSHD),
                connection=access.to_jump_host(),
                script_name="discovery-wait-sshd.sh",
                env={"TARGET_HOST": address, "SSH_WAIT_TIMEOUT": str(timeout)},
                timeout=timeout,
                parent=parent,
                depends_on=[instance],
                instance=instance,
            )
        )
    return node_command(
        command_name(node, Role.READY),
        connection=connection,
        script_name="node-ready.sh",
        env={"READY_TIMEOUT": str(timeout)},
        timeout=timeout,
        parent=parent,
        depends_on=waits,
        instance=instance,
    )


# Installing a renewed certificate and restarting what reads it.
CERT_TIMEOUT = 180


@dataclass(frozen=True)
class Timeouts:
    """Bounds, in seconds, on what remote commands wait for (settings.timeouts)."""

    ready: int
    init: int
    join: int
    drain: int
    upgrade: int


def run_step(
    step: Step,
    name: str,
    *,
    connection: remote.ConnectionArgs,
    env: Env,
    timeout: int,
    parent: pulumi.Resource,
    after: Sequence[pulumi.Resource] = (),
    instance: pulumi.Resource | None = None,
    label: str | None = None,
) -> remote.Command:
    """The command of one row of the lifecycle table (components/roles.STEPS), its options
    made from the row's mode: the one place a mode becomes a command's behaviour."""
    common = dict(
        connection=connection,
        script_name=step.script,
        env=env,
        timeout=timeout,
        parent=parent,
        depends_on=after,
    )
    if step.mode is Mode.ON_DELETE:
        return delete_command(name, instance=instance, **common)
    if step.mode is Mode.DAY_2:
        return day2_command(name, label=label or step.role.value, **common)
    return node_command(
        name,
        rerun_on_change=step.mode is Mode.APPLY,
        secret_stdout=step.secret_stdout,
        label=label,
        instance=instance,
        **common,
    )

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

from cloud_init import jump, script, steps
from components import roles
from components.roles import RERUNS, Mode, Role, Step, command_name

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


def script_with_env(name: str, env: Env, *, installed: bool = False) -> pulumi.Output[str]:
    """`export K='v'` lines, then the script: what `bash -s` reads on the node (or, when
    `installed`, the line that runs the node's own copy of it: steps.loader). The
    environment is a mapping of inputs, or one output that is the whole mapping (built by a
    cloud_init env builder from values known only at deployment)."""
    if isinstance(env, pulumi.Output):
        return env.apply(lambda values: stdin_text(name, values, installed=installed))
    keys = sorted(env)
    return pulumi.Output.all(*[env[k] for k in keys]).apply(
        lambda values: stdin_text(name, dict(zip(keys, values, strict=True)), installed=installed)
    )


def secret_b64(text: pulumi.Output[str]) -> pulumi.Output[str]:
    """A text for a script's environment, base64 (one line, any content) and a secret."""
    return pulumi.Output.secret(text.apply(lambda t: base64.b64encode(t.encode()).decode()))


def stdin_text(name: str, values: Mapping[str, object], *, installed: bool = False) -> str:
    """The text itself, for values already known. The scripts run `main "$@" </dev/null`, so
    nothing they start can read the rest of it (and the loader `exec`s the installed copy)."""
    for key in values:
        if not _ENV_NAME.fullmatch(key):
            raise ValueError(f"{key!r} is not a shell variable name")
    exports = "".join(f"export {k}={shlex.quote(str(values[k]))}\n" for k in sorted(values))
    return exports + (steps.loader(name) + "\n" if installed else script(name))


def _inline(stdin_text: str) -> str:
    """A command line that runs a script without stdin (delete commands)."""
    encoded = base64.b64encode(stdin_text.encode()).decode()
    return f"echo {encoded} | base64 -d | sudo bash -s"


def _timeouts(seconds: int) -> pulumi.CustomTimeouts:
    # The script enforces its own bound; the engine's is a backstop a little beyond it.
    minutes = f"{math.ceil(seconds / 60) + 5}m"
    return pulumi.CustomTimeouts(create=minutes, update=minutes, delete=minutes)


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
            run_step(
                roles.SSHD,
                command_name(node, Role.SSHD),
                connection=access.to_jump_host(),
                env=address.apply(lambda a: jump.wait_sshd_env(a, timeout=timeout)),
                timeout=timeout,
                parent=parent,
                after=[instance],
                instance=instance,
            )
        )
    return run_step(
        roles.READY,
        command_name(node, Role.READY),
        connection=connection,
        env={"READY_TIMEOUT": str(timeout)},
        timeout=timeout,
        parent=parent,
        after=waits,
        instance=instance,
    )


def step_kit(
    node: str,
    kind: str,
    *,
    connection: remote.ConnectionArgs,
    instance: pulumi.Resource,
    timeout: int,
    parent: pulumi.Resource,
    after: Sequence[pulumi.Resource],
) -> remote.Command:
    """`<node>-step-kit`: the scripts of every step that runs again on a change, installed on
    the node (steps.STEP_KIT_DIR), where those steps run them from. Made once per VM, and
    made again on every node when a step's revision is raised (its trigger: the VM and
    roles.kit_revision); an edit of a script's text alone changes neither."""
    return run_step(
        roles.STEP_KIT,
        command_name(node, Role.STEP_KIT),
        connection=connection,
        env={"READY_TIMEOUT": str(timeout), "STEP_KIT_TAR_B64": KITS[kind]},
        timeout=timeout,
        parent=parent,
        after=after,
        instance=instance,
        trigger=KIT_REVISION,
    )


# The step kit each kind of node keeps (made once per program run, the same bytes for every
# node of a kind).
KITS = {node: steps.step_kit_tar_b64(roles.kit_scripts(node)) for node in roles.NODES}
KIT_REVISION = roles.kit_revision()
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
    trigger: str | None = None,
) -> remote.Command:
    """The command of one row of the lifecycle table (components/roles.STEPS): the one place
    a mode becomes a command's behaviour, and what triggers it (docs/lifecycle.md).

    - RUN_ONCE, PER_GENERATION: runs when created; a later change of its stdin (a newer
      script, new values) or of its connection (a new jump host address) is not even an
      update: nothing connects, so a node that is gone blocks only what concerns it.
    - APPLY: runs when created and again whenever its trigger changes; DAY_2: the same, but
      nothing runs (nor connects) when it is created: a new node already is what the
      settings say. Their stdin is the environment, the step's revision and the line that
      runs the node's installed copy of the script (steps.loader): the settings it applies
      and the revision are its trigger, the script's text is not. The script must be
      idempotent.
    - ON_DELETE: runs nothing until deleted; then the script (a drain) runs.

    With an instance (a per_vm row), the command belongs to that VM: its `triggers` hold the
    instance id (and `trigger`), so a new VM replaces it and it runs again there. A label is
    a shell comment on the command line: it says in previews why the command runs again even
    when its stdin is a secret (and, unlike `triggers`, never asks for a replacement).
    """
    reruns = step.mode in RERUNS
    if reruns:
        # A day-2 command always says in the clear what it acts on: its role, at least.
        env, label = _with_revision(env, step, label or _day2_label(step))
    stdin = script_with_env(step.script, env, installed=reruns)
    triggers = [instance.id, *([trigger] if trigger else [])] if instance is not None else None
    options = dict(parent=parent, depends_on=list(after), custom_timeouts=_timeouts(timeout))
    if step.mode is Mode.ON_DELETE:
        return _on_delete(name, connection, stdin, triggers, pulumi.ResourceOptions(**options))
    run = "sudo bash -s" + (f"  # {label}" if label else "")
    return remote.Command(
        name,
        connection=connection,
        create=None if step.mode is Mode.DAY_2 else run,
        update=run if reruns else NO_OP,
        stdin=stdin,
        triggers=triggers,
        # stdout of secret-bearing commands is a secret and never logged.
        logging=remote.Logging.STDERR if step.secret_stdout else remote.Logging.STDOUT_AND_STDERR,
        # The previous run's stdout (a token, a key) would otherwise travel in the clear as
        # an environment variable of every update.
        add_previous_output_in_env=False,
        opts=pulumi.ResourceOptions(
            **options,
            additional_secret_outputs=["stdout"] if step.secret_stdout else None,
            ignore_changes=None if reruns else RUN_ONCE_IGNORED,
        ),
    )


def _day2_label(step: Step) -> str | None:
    return step.role.value if step.mode is Mode.DAY_2 else None


def _on_delete(name, connection, stdin, triggers, opts) -> remote.Command:
    # Neither create nor update commands: nothing runs, and nothing connects, until delete.
    return remote.Command(
        name,
        connection=connection,
        delete=stdin.apply(_inline),
        triggers=triggers,
        add_previous_output_in_env=False,
        opts=opts,
    )


def _with_revision(env: Env, step: Step, label: str | None) -> tuple[Env, str | None]:
    """The environment with STEP_REVISION (raising it re-runs the step on every node), and
    the label that says so in the clear once the revision was ever raised."""
    if step.revision > 1:
        label = f"{label + ' · ' if label else ''}{step.role} revision {step.revision}"
    revision = {"STEP_REVISION": str(step.revision)}
    if isinstance(env, pulumi.Output):
        return env.apply(lambda values: {**values, **revision}), label
    return {**env, **revision}, label

"""Benchmark: bring-up critical path, program cost, user-data size.

    python -m tools.bench [--workers 3,30,300,1000] [--masters 1,3] [--readme README.md]
    python -m tools.bench --real [--workers 3,30,100] [--masters 1] [--readme README.md]

Bring-up: the dependency graph is the one the program hands the engine (recorded under the
mock engine, exactly as `tools.plan` does), each resource costs what DURATIONS says its kind
takes, and the earliest finish of every resource is computed under unbounded parallelism.
The critical path is compared with the single-chain limit from the same table (network, one
VM boot, a master's bootstrap, kubeadm init, then the joins that must be serialised), and with
the same graph ordered one machine at a time, as sequential tools configure it (workers boot
only once the first master is up).

Program cost: wall time and peak memory of evaluating the program under the mock engine (the
Python side of `pulumi preview`), each scenario in a fresh process.
User-data: bytes per role as delivered to Nova, against its 64 KiB limit.

--real: the same stacks through the real CLI against the local OpenStack (tools/real-engine.sh,
`tools/openstack.sh start`): `preview`, `up` and a no-change preview with command:* and
kubernetes:* left out, `destroy`, each timed once per size next to the offline evaluation.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from components.roles import Role, command_name, role_of

ROOT = Path(__file__).resolve().parent.parent
NOVA_LIMIT = 64 * 1024

# Seconds each kind of step takes. Published figures and our own notes, not measurements of
# this program (there is no cloud here): change them when a cloud tells you better, the
# program is judged against whatever this table says.
DURATIONS = {
    "api": 5.0,  # an OpenStack API call that returns when the object exists
    "router": 10.0,  # a router with its external gateway
    "octavia-lb": 90.0,  # an Octavia amphora load balancer going ACTIVE
    "octavia-child": 10.0,  # listener, pool, monitor, member (Octavia serialises them)
    "local": 0.1,  # keys, certificates, providers: no remote call
    "vm-boot": 60.0,  # Nova schedules, spawns and boots to sshd
    "vm-boot-volume": 80.0,  # the same, from a fresh Cinder volume
    "ready-discovery": 150.0,  # cloud-init: etcd from the distro, TLS, flannel config seeded
    "ready-master": 300.0,  # cloud-init: containerd, kubeadm/kubelet, flannel, haproxy+keepalived
    "ready-worker": 270.0,  # cloud-init: containerd, kubeadm/kubelet, flannel
    "sshd-wait": 2.0,  # the jump host sees the node's sshd (booting to it is in vm-boot)
    "kubeadm-files": 5.0,  # PKI and init config to the first master
    "init": 120.0,  # kubeadm init until the API answers
    "token": 5.0,  # kubeadm token create
    "cp-join": 90.0,  # kubeadm join --control-plane (etcd member, static pods)
    "worker-join": 45.0,  # kubeadm join
    "apiserver-check": 3.0,  # the API server's flags and files already as asked (bring-up)
    "encryption-step": 60.0,  # a master's kube-apiserver restarted with the next key order
    "secrets-rewrite": 30.0,  # every Secret read and written again
    "bundle": 40.0,  # etcd backup timer and scripts installed (apt)
    "step-kit": 2.0,  # the node's step kit unpacked (cloud-init long finished)
    "engine-only": 0.05,  # a command with nothing to run at creation (drain, upgrades)
    "k8s-object": 2.0,  # a Kubernetes object applied
    "k8s-workload": 60.0,  # a Deployment/DaemonSet rolled out
}


# The component a node's resources belong to says which group the node is in.
_GROUPS = {
    "openstack-k8s:index:DiscoveryNode": "discovery",
    "openstack-k8s:index:ControlPlane": "master",
    "openstack-k8s:index:WorkerPool": "worker",
}
# Commands whose creation does one thing whatever the node: their DURATIONS key.
_ROLE_KINDS = {
    Role.KUBEADM_FILES: "kubeadm-files",
    Role.INIT: "init",
    Role.TOKEN: "token",
    Role.SSHD: "sshd-wait",
    Role.UPGRADE_CREDENTIAL: "token",
    Role.APISERVER: "apiserver-check",
    Role.ETCD_BACKUP: "bundle",
    Role.STEP_KIT: "step-kit",
    Role.ENCRYPTION_ADD: "encryption-step",
    Role.ENCRYPTION_PROMOTE: "encryption-step",
    Role.ENCRYPTION_DROP: "encryption-step",
    Role.ENCRYPTION_REWRITE: "secrets-rewrite",
}
_FIXED_KINDS = {
    "openstack:networking/router:Router": "router",
    "openstack:loadbalancer/loadBalancer:LoadBalancer": "octavia-lb",
}
_PREFIX_KINDS = (
    ("openstack:loadbalancer/", "octavia-child"),
    ("openstack:", "api"),
    ("kubernetes:apps/v1:Deployment", "k8s-workload"),
    ("kubernetes:apps/v1:DaemonSet", "k8s-workload"),
    ("kubernetes:", "k8s-object"),
    ("tls:", "local"),
    ("random:", "local"),
    ("pulumi:providers:", "local"),
)


def node_group(urn: str) -> str | None:
    """discovery, master or worker: the node group whose component the resource is under (its
    URN names every parent type), None for anything else."""
    return next((g for t, g in _GROUPS.items() if f"{t}$" in urn), None)


def _command_kind(r: dict) -> str:
    if "create" not in r["inputs"]:
        return "engine-only"
    role = role_of(r["name"])
    if role in _ROLE_KINDS:
        return _ROLE_KINDS[role]
    group = node_group(r["urn"])
    if role is Role.READY and group is not None:
        return f"ready-{group}"
    if role is Role.JOIN and group in ("master", "worker"):
        return "cp-join" if group == "master" else "worker-join"
    raise ValueError(f"no duration for command {r['name']}")


def kind_of(r: dict) -> str:
    """The DURATIONS key for one registered resource: {type, name, urn, inputs}."""
    type_ = r["type"]
    if type_.startswith("openstack-k8s:index:"):
        return "component"
    if type_ == "command:remote:Command":
        return _command_kind(r)
    if type_ == "openstack:compute/instance:Instance":
        return "vm-boot-volume" if r["inputs"].get("blockDevices") else "vm-boot"
    if type_ in _FIXED_KINDS:
        return _FIXED_KINDS[type_]
    for prefix, kind in _PREFIX_KINDS:
        if type_.startswith(prefix):
            return kind
    raise ValueError(f"no duration for {type_} {r['name']}")


def chain_limit(masters: int) -> float:
    """One chain no ordering can beat: network, subnet, router interface, a master's VM,
    its bootstrap, kubeadm init, then the control-plane joins one after another (or, with
    one master, one worker's join)."""
    d = DURATIONS
    joins = max((masters - 1) * d["cp-join"], d["worker-join"])
    return 3 * d["api"] + d["vm-boot"] + d["ready-master"] + d["init"] + joins


def finish_times(
    resources: list[dict], extra: dict[str, set[str]] | None = None, serial: list[str] | None = None
) -> dict[str, float]:
    """Earliest finish of every resource, unbounded parallelism.

    extra: more dependencies by name (the sequential ordering); serial: names that must run one
    after another in that order, each also after its own dependencies.
    """
    by_urn = {r["urn"]: r for r in resources}
    by_name = {r["name"]: r for r in resources}
    children: dict[str, list[str]] = {}
    for r in resources:
        children.setdefault(r["parent"], []).append(r["urn"])
    done: dict[str, float] = {}
    position = {n: i for i, n in enumerate(serial or [])}

    def finish(urn: str, stack: tuple = ()) -> float:
        if urn in done:
            return done[urn]
        if urn in stack:
            raise ValueError(f"dependency cycle through {by_urn[urn]['name']}")
        r = by_urn[urn]
        deps = set(r["dependencies"]) | {
            by_name[n]["urn"] for n in (extra or {}).get(r["name"], ())
        }
        if r["name"] in position and position[r["name"]] > 0:
            deps.add(by_name[serial[position[r["name"]] - 1]]["urn"])
        start = 0.0
        for dep in deps:
            if dep not in by_urn:
                continue
            if by_urn[dep]["kind"] == "component":
                # waiting on a component means waiting on everything in it
                start = max(
                    [start, *(finish(c, stack + (urn,)) for c in _descendants(dep, children))]
                )
            else:
                start = max(start, finish(dep, stack + (urn,)))
        done[urn] = start + (0.0 if r["kind"] == "component" else DURATIONS[r["kind"]])
        return done[urn]

    sys.setrecursionlimit(max(10000, 20 * len(resources)))
    for r in resources:
        finish(r["urn"])
    return {by_urn[u]["name"]: t for u, t in done.items()}


def _descendants(urn: str, children: dict[str, list[str]]) -> list[str]:
    out, stack = [], list(children.get(urn, []))
    while stack:
        u = stack.pop()
        out.append(u)
        stack.extend(children.get(u, []))
    return out


def sequential_ordering(resources: list[dict]) -> tuple[dict[str, set[str]], list[str]]:
    """The order tools that configure one machine at a time give the same graph: worker VMs
    are created only once the first master is initialised, and each node's bootstrap and join
    come after the previous node's."""
    names = {r["name"] for r in resources}
    order = {"discovery": 0, "master": 1, "worker": 2}
    instances = sorted(
        (
            (node_group(r["urn"]), r["name"])
            for r in resources
            if r["type"] == "openstack:compute/instance:Instance"
        ),
        key=lambda gn: (order[gn[0]], _index(gn[1])),
    )
    first_init = next(n for n in sorted(names, key=_index) if role_of(n) is Role.INIT)
    extra = {n: {first_init} for g, n in instances if g == "worker"}
    serial = [
        command_name(n, step)
        for _, n in instances
        for step in (Role.READY, Role.INIT, Role.JOIN)
        if command_name(n, step) in names
    ]
    return extra, serial


def _index(name: str) -> tuple:
    return tuple(int(x) if x.isdigit() else x for x in re.split(r"(\d+)", name))


CHILD = """
import json, resource, sys, time
from tools import plan as P
from tools.bench import node_group
t0 = time.perf_counter()
ev = P.evaluate_stack("dev", [tuple(item) for item in json.loads(sys.argv[1])])
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
sizes = {}
for r in ev.registrations:
    if r.type == "openstack:compute/instance:Instance":
        group = node_group(r.urn)
        sizes[group] = max(sizes.get(group, 0), len(r.raw_inputs["userData"].encode()))
print(json.dumps({
    "seconds": seconds, "peak_mib": peak, "user_data": sizes,
    "resources": [{"urn": r.urn, "name": r.name, "type": r.type, "parent": r.parent,
                   "dependencies": r.dependencies,
                   "inputs": {k: True for k in r.raw_inputs if k in ("create", "blockDevices")}}
                  for r in ev.registrations],
}))
"""


def stack_sets(masters: int, workers: int) -> list[tuple[str, Any]]:
    """The bench's stack: dev's stack file with this many masters and general workers."""
    return [
        ("masters", {"count": masters}),
        ("workerPools", [{"name": "general", "count": workers}]),
        # room for 1000 nodes: their /24s of pod network, and their ports
        ("podCidr", "10.64.0.0/14"),
        ("network.cidr", "10.10.0.0/20"),
        # the dev stack plans only once it says where it is reached from
        ("sshAllowedCidrs", ["203.0.113.0/24"]),
        ("apiAllowedCidrs", ["203.0.113.0/24"]),
    ]


def evaluate(sets: list[tuple[str, Any]]) -> dict:
    """Evaluate dev with `sets` under the mock engine in a fresh process: seconds, peak memory,
    user-data sizes and the registered resources."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(sets)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    if out.returncode != 0:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout)


def scenario(masters: int, workers: int) -> dict:
    data = evaluate(stack_sets(masters, workers))
    for r in data["resources"]:
        r["kind"] = kind_of(r)
    ours = finish_times(data["resources"])
    extra, serial = sequential_ordering(data["resources"])
    sequential = finish_times(data["resources"], extra, serial)
    path, limit = max(ours.values()), chain_limit(masters)
    return {
        "masters": masters,
        "workers": workers,
        "resources": len(data["resources"]),
        "critical_path": path,
        "limit": limit,
        "ratio": path / limit,
        "sequential": max(sequential.values()),
        "gain": max(sequential.values()) / path,
        "seconds": data["seconds"],
        "peak_mib": data["peak_mib"],
        "user_data": data["user_data"],
        "last": max(ours, key=ours.get),
    }


def table(results: list[dict]) -> str:
    lines = [
        "| masters | workers | resources | critical path | chain limit | ratio "
        "| sequential ordering | gain | evaluation | peak memory |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r['masters']} | {r['workers']} | {r['resources']} | {r['critical_path'] / 60:.1f} min "
            f"| {r['limit'] / 60:.1f} min | {r['ratio']:.3f} | {r['sequential'] / 60:.1f} min | {r['gain']:.1f}x "
            f"| {r['seconds']:.1f} s | {r['peak_mib']:.0f} MiB |"
        )
    sizes: dict[str, int] = {}
    for r in results:
        for role, size in r["user_data"].items():
            sizes[role] = max(sizes.get(role, 0), size)
    lines += [
        "",
        "| role | user-data as delivered (largest) | share of Nova's 64 KiB |",
        "| --- | ---: | ---: |",
    ]
    for role in ("discovery", "master", "worker"):
        if role in sizes:
            lines.append(f"| {role} | {sizes[role]:,} B | {sizes[role] / NOVA_LIMIT:.0%} |")
    by_masters: dict[int, list[dict]] = {}
    for r in results:
        by_masters.setdefault(r["masters"], []).append(r)
    growth = []
    for m, rs in sorted(by_masters.items()):
        rs = sorted(rs, key=lambda r: r["workers"])
        if len(rs) > 1:
            per = (rs[-1]["seconds"] - rs[0]["seconds"]) / (rs[-1]["workers"] - rs[0]["workers"])
            growth.append(f"{m} master(s): {per * 1000:.0f} ms of evaluation per added worker")
    if growth:
        lines += ["", "Growth: " + "; ".join(growth) + "."]
    return "\n".join(lines)


# --real: the same stacks through the real CLI against the local OpenStack.
REAL_WORKERS = "3,30,100"


def real_scenario(
    masters: int,
    workers: int,
    open_stack: Callable[[str, list[str]], Any],
    exclude: Any,
    clock: Callable[[], float] = time.perf_counter,
    load: Callable[[], float] = lambda: os.getloadavg()[0],
) -> dict:
    """One size for real: the offline evaluation of the stack, then `pulumi preview` (all of
    it: a preview creates nothing), `up` and a no-change preview with `exclude` left out, and
    `destroy`, each timed. `open_stack(name, sets)` gives an uninitialised harness Stack
    (tests/engine/real.py) of dev with `sets` (KEY=JSON). The stack is destroyed whatever
    fails; a failed command raises with its output. `load` (the 1-minute load average) is read
    after every step: the machine is shared, and the highest reading goes with the times."""
    name = f"bench{masters}m{workers}w"
    sets = [*stack_sets(masters, workers), ("clusterName", name)]
    offline = evaluate(sets)
    stack = open_stack(name, [f"{k}={json.dumps(v)}" for k, v in sets])
    stack.init()
    times: dict[str, float] = {}
    loads: list[float] = []

    def timed(step: str, run: Callable[[], Any]) -> Any:
        started = clock()
        result = run()
        times[step] = clock() - started
        loads.append(load())
        print(f"{name}: {step} {times[step]:.1f} s (load {loads[-1]:.0f})", file=sys.stderr)
        if getattr(result, "ok", True) is False:
            raise SystemExit(f"{name}: {step} failed: {result.describe()}")
        return result

    try:
        preview = timed("preview", stack.preview)
        planned = [s for s in preview.json()["steps"] if s["op"] == "create"]
        timed("up", lambda: stack.up(exclude=exclude))
        state = stack.export()["deployment"].get("resources", [])
        created = [r for r in state if r["type"].startswith("openstack:")]
        timed("again", lambda: stack.preview(exclude=exclude, expect_no_changes=True))
    finally:
        timed("destroy", stack.destroy)
    return {
        "masters": masters,
        "workers": workers,
        "resources": len(offline["resources"]),
        "evaluation": offline["seconds"],
        "planned": len(planned),
        "created": len(state),
        "openstack": len(created),
        "load": max(loads),
        **times,
    }


def real_table(results: list[dict]) -> str:
    lines = [
        "| masters | workers | resources (offline) | offline evaluation | real preview "
        "| up: resources (OpenStack) | real up | no-change preview | destroy | load average |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r['masters']} | {r['workers']} | {r['resources']} | {r['evaluation']:.1f} s "
            f"| {r['preview']:.1f} s | {r['created']} ({r['openstack']}) | {r['up']:.1f} s "
            f"| {r['again']:.1f} s | {r['destroy']:.1f} s | {r['load']:.0f} |"
        )
    return "\n".join(lines)


def open_real_stacks(workdir: Path) -> tuple[Callable[[str, list[str]], Any], Any]:
    """(open_stack, exclude) for real_scenario: the engine of tools/real-engine.sh, the local
    OpenStack's environment (tools/openstack.sh must report it running) and the harness's
    CLUSTER_SIDE. The harness lives with the engine tests."""
    sys.path.insert(0, str(ROOT / "tests" / "engine"))
    from real import CLUSTER_SIDE, Engine, Stack

    status = subprocess.run(
        ["bash", str(ROOT / "tools" / "openstack.sh"), "status"], capture_output=True, text=True
    )
    if status.returncode != 0:
        raise SystemExit(
            "--real needs the local OpenStack: `bash tools/openstack.sh start`\n" + status.stdout
        )
    exported = subprocess.run(
        ["bash", str(ROOT / "tools" / "openstack.sh"), "env"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    env = dict(
        line.removeprefix("export ").split("=", 1)
        for line in exported.splitlines()
        if line.startswith("export ")
    )
    engine = Engine.build()

    def open_stack(name: str, sets: list[str]) -> Any:
        return Stack.from_stack_file(engine, workdir / name, "dev", sets, name=name, env=env)

    return open_stack, CLUSTER_SIDE


def replace_section(path: Path, marker: str, text: str) -> None:
    """Put `text` between <!-- MARKER:start --> and <!-- MARKER:end --> in `path`."""
    readme = path.read_text()
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    if start not in readme or end not in readme:
        raise SystemExit(f"{path} has no {start} ... {end} section")
    head, rest = readme.split(start, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{start}\n{text}\n{end}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--workers", help=f"default 3,30,300,1000; with --real {REAL_WORKERS}")
    parser.add_argument("--masters", help="default 1,3; with --real 1")
    parser.add_argument(
        "--real",
        action="store_true",
        help="time real `pulumi preview` and `up` (command and kubernetes excluded) against "
        "the local OpenStack, next to the offline evaluation (tools/real-engine.sh, "
        "tools/openstack.sh start)",
    )
    parser.add_argument(
        "--readme", type=Path, help="replace the table between the bench markers in this file"
    )
    args = parser.parse_args(argv)
    workers = args.workers or (REAL_WORKERS if args.real else "3,30,300,1000")
    masters = args.masters or ("1" if args.real else "1,3")
    sizes = [(m, w) for m in map(int, masters.split(",")) for w in map(int, workers.split(","))]
    started = time.perf_counter()
    if args.real:
        text = run_real(sizes)
    else:
        text = run_model(sizes)
    print(text)
    print(f"(bench took {time.perf_counter() - started:.0f} s)", file=sys.stderr)
    if args.readme:
        replace_section(args.readme, "bench-real" if args.real else "bench", text)
    return 0


def run_model(sizes: list[tuple[int, int]]) -> str:
    results = []
    for m, w in sizes:
        r = scenario(m, w)
        print(
            f"masters={m} workers={w}: critical path {r['critical_path']:.0f}s "
            f"(limit {r['limit']:.0f}s, ratio {r['ratio']:.3f}, last {r['last']}), "
            f"sequential {r['sequential']:.0f}s, evaluation {r['seconds']:.1f}s, {r['peak_mib']:.0f} MiB",
            file=sys.stderr,
        )
        results.append(r)
    return table(results)


def run_real(sizes: list[tuple[int, int]]) -> str:
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-real-") as tmp:
        open_stack, exclude = open_real_stacks(Path(tmp))
        for m, w in sizes:
            r = real_scenario(m, w, open_stack, exclude)
            print(
                f"masters={m} workers={w}: evaluation {r['evaluation']:.1f}s, preview "
                f"{r['preview']:.1f}s, up {r['up']:.1f}s ({r['created']} resources), "
                f"no-change preview {r['again']:.1f}s, destroy {r['destroy']:.1f}s",
                file=sys.stderr,
            )
            results.append(r)
    return real_table(results)


if __name__ == "__main__":
    sys.exit(main())

"""The mock cloud over a previous plan answers as the engine over its state (CloudMocks
.register): kept ids and outputs, ignoreChanges from the old inputs, a new id and new
outputs for a replacement. In process, one registration at a time, no program run."""

from __future__ import annotations

from tools import mockengine
from tools.mockengine import CloudMocks, Registration

PORT = "openstack:networking/port:Port"
RANDOM_ID = "random:index/randomId:RandomId"
PREFIX = "urn:pulumi:dev::openstack-k8s::openstack-k8s:index:Cluster$"


def reg(type_: str, name: str, inputs: dict, **options) -> Registration:
    return Registration(
        urn=f"{PREFIX}{type_}::{name}",
        type=type_,
        name=name,
        parent="",
        custom=True,
        dependencies=[],
        inputs=inputs,
        raw_inputs=inputs,
        options=options,
    )


def as_prior(r: Registration, id_: str | None) -> dict:
    """The registration as the previous plan.json lists it."""
    out = {"urn": r.urn, "type": r.type, "name": r.name, "inputs": r.inputs}
    out["options"] = r.options
    if id_ is not None:
        out["id"] = id_
    return out


def pin(image: str, **options) -> Registration:
    return reg(RANDOM_ID, "n-0-image", {"byteLength": 4, "keepers": {"imageId": image}}, **options)


def test_an_ignored_property_keeps_its_old_value_and_the_resource_its_id():
    """A node's image pin: a new image id in keepers, ignored, leaves the pin as it was,
    and the id the program reads back from it is the old one."""
    first_id, first, op = CloudMocks("10.0.0.0/24", "dev").register(pin("img-1"))
    assert op == "create" and first["keepers"] == {"imageId": "img-1"}
    old = {pin("img-1").urn: as_prior(pin("img-1", ignoreChanges=["keepers"]), first_id)}
    id_, state, op = CloudMocks("10.0.0.0/24", "dev", old).register(
        pin("img-2", ignoreChanges=["keepers"])
    )
    assert (op, id_, state["keepers"]) == ("same", first_id, {"imageId": "img-1"})


def test_without_ignore_changes_the_same_change_replaces():
    first_id, _, _ = CloudMocks("10.0.0.0/24", "dev").register(pin("img-1"))
    old = {pin("img-1").urn: as_prior(pin("img-1"), first_id)}
    id_, state, op = CloudMocks("10.0.0.0/24", "dev", old).register(pin("img-2"))
    assert op == "replace" and id_ != first_id and state["keepers"] == {"imageId": "img-2"}


def port(network: str, subnet: str) -> Registration:
    return reg(PORT, "n-0-port", {"networkId": network, "fixedIps": [{"subnetId": subnet}]})


def test_a_replaced_port_is_a_new_port_with_a_new_address_and_keeps_them():
    fresh_id, fresh, _ = CloudMocks("10.0.0.0/24", "dev").register(port("net-1", "sub-1"))
    old = {port("net-1", "sub-1").urn: as_prior(port("net-1", "sub-1"), fresh_id)}
    new_id, replaced, op = CloudMocks("10.0.0.0/24", "dev", old).register(port("net-2", "sub-1"))
    assert op == "replace" and new_id != fresh_id
    assert replaced["allFixedIps"] != fresh["allFixedIps"]
    assert replaced["macAddress"] != fresh["macAddress"]
    # A plan over that one: the replacement's id and address stay.
    again = {port("net-2", "sub-1").urn: as_prior(port("net-2", "sub-1"), new_id)}
    id_, state, op = CloudMocks("10.0.0.0/24", "dev", again).register(port("net-2", "sub-1"))
    assert (op, id_, state["allFixedIps"]) == ("same", new_id, replaced["allFixedIps"])


def test_a_port_moved_to_another_subnet_is_updated_in_place():
    """fixed_ips update a Neutron port in place: same id; in a new range, a new address."""
    fresh_id, fresh, _ = CloudMocks("10.0.0.0/24", "dev").register(port("net-1", "sub-1"))
    old = {port("net-1", "sub-1").urn: as_prior(port("net-1", "sub-1"), fresh_id)}
    id_, state, op = CloudMocks("10.9.0.0/24", "dev", old).register(port("net-1", "sub-2"))
    assert (op, id_) == ("update", fresh_id)
    assert state["fixedIps"][0]["subnetId"] == "sub-2"
    assert state["allFixedIps"][0].startswith("10.9.0.")


def test_a_previous_plan_without_ids_had_the_ids_of_names():
    """Plans written before ids were recorded: the mock gave every resource its name's id."""
    old = {port("net-1", "sub-1").urn: as_prior(port("net-1", "sub-1"), None)}
    id_, _, op = CloudMocks("10.0.0.0/24", "dev", old).register(port("net-1", "sub-1"))
    assert (op, id_) == ("same", mockengine._id(PORT, "n-0-port"))


def test_a_secret_the_plan_cannot_show_stays_the_programs():
    """An ignored input the previous plan shows as "[secret]" is unknown offline: the
    provider's echo keeps the new value instead of the placeholder."""
    new = reg(
        "command:remote:Command",
        "n-0-ready",
        {"create": "true", "stdin": "[secret]"},
        ignoreChanges=["stdin"],
    )
    new.raw_inputs = {"create": "true", "stdin": "export A=2"}
    old = {new.urn: as_prior(new, "c-1")}
    old[new.urn]["inputs"] = {"create": "true", "stdin": "[secret]"}
    id_, state, op = CloudMocks("10.0.0.0/24", "dev", old).register(new)
    assert (op, id_, state["stdin"]) == ("same", "c-1", "export A=2")


def join(vm: str, script: str) -> Registration:
    """A run-once node command (components/commands.node_command): its VM's id in
    `triggers`, its script and jump host ignored once it has run."""
    return reg(
        "command:remote:Command",
        "n-0-join",
        {"create": "sudo bash -s", "update": "true", "stdin": script, "triggers": [vm]},
        ignoreChanges=["connection", "stdin"],
    )


def test_a_replacement_is_created_from_the_programs_inputs_ignored_ones_too():
    """ignoreChanges holds only for an update: the engine checks a replacement afresh from
    the program's inputs (pulumi/pulumi step_generator.go, a replace Checks goal.Properties
    again), so the create of a replacement gets them all. A run-once command replaced with
    its VM runs the new script on the new VM, not the one it ran on the old VM."""
    old = {join("vm-1", "v1").urn: as_prior(join("vm-1", "v1"), "c-1")}
    id_, state, op = CloudMocks("10.0.0.0/24", "dev", old).register(join("vm-1", "v2"))
    assert (op, id_, state["stdin"]) == ("same", "c-1", "v1")
    id_, state, op = CloudMocks("10.0.0.0/24", "dev", old).register(join("vm-2", "v2"))
    assert op == "replace" and id_ != "c-1"
    assert state["stdin"] == "v2" and state["triggers"] == ["vm-2"]

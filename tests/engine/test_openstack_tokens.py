"""The OpenStack bridge's token map (tools/engine/openstack_tokens.py) pairs the Python SDK's type
tokens with the Terraform provider's names at build time. The matching rules on small cases, the
installed SDK's tokens, and (engine tier) the built provider serving exactly the SDK's tokens."""

from __future__ import annotations

import json
import pathlib
import subprocess
import warnings

import pytest

with warnings.catch_warnings():
    # The SDK warns at import about its own deprecated aliases (lbLoadbalancerV2, ...).
    warnings.simplefilter("ignore", DeprecationWarning)
    import pulumi_openstack

from tools.engine import openstack_tokens as ot

SDK = pathlib.Path(pulumi_openstack.__file__).parent

# What the program sends, and the Terraform names the provider must answer them with.
PROGRAM_DATA_SOURCES = {
    "openstack:networking/getNetwork:getNetwork": "openstack_networking_network_v2",
    "openstack:networking/getSubnet:getSubnet": "openstack_networking_subnet_v2",
    "openstack:images/getImage:getImage": "openstack_images_image_v2",
    "openstack:identity/getAuthScope:getAuthScope": "openstack_identity_auth_scope_v3",
}


def test_tiers_pair_module_abbreviation_index_alias_and_a_lone_leftover():
    tf = [
        "openstack_compute_instance_v2",
        "openstack_lb_pool_v2",
        "openstack_db_user_v1",
        "openstack_blockstorage_quotaset_v3",
        "openstack_blockstorage_volume_v3",
    ]
    tokens = {
        "openstack:compute/instance:Instance",
        "openstack:loadbalancer/pool:Pool",
        "openstack:index/lbPoolV2:LbPoolV2",  # a deprecated second token of the same name
        "openstack:database/user:User",
        "openstack:blockstorage/quoteSetV3:QuoteSetV3",  # the SDK's own spelling
        "openstack:blockstorage/volume:Volume",
    }
    got = ot.match(tf, tokens, function=False)
    assert got == [
        ("openstack_blockstorage_quotaset_v3", "openstack:blockstorage/quoteSetV3:QuoteSetV3", 3),
        ("openstack_blockstorage_volume_v3", "openstack:blockstorage/volume:Volume", 1),
        ("openstack_compute_instance_v2", "openstack:compute/instance:Instance", 1),
        ("openstack_db_user_v1", "openstack:database/user:User", 2),
        # the module's own token first: it gets the Terraform name, the alias a clone
        ("openstack_lb_pool_v2", "openstack:loadbalancer/pool:Pool", 2),
        ("openstack_lb_pool_v2", "openstack:index/lbPoolV2:LbPoolV2", 1),
    ]


def test_data_sources_lose_get_and_the_exact_module_wins_over_an_abbreviation():
    tf = [
        "openstack_loadbalancer_flavor_v2",
        "openstack_lb_flavor_v2",
        "openstack_networking_network_v2",
    ]
    tokens = {
        "openstack:loadbalancer/getFlavorV2:getFlavorV2",
        "openstack:loadbalancer/getLbFlavorDeprecated:getLbFlavorDeprecated",
        "openstack:networking/getNetwork:getNetwork",
    }
    got = {tok: name for name, tok, _ in ot.match(tf, tokens, function=True)}
    assert got == {
        "openstack:loadbalancer/getFlavorV2:getFlavorV2": "openstack_loadbalancer_flavor_v2",
        "openstack:loadbalancer/getLbFlavorDeprecated:getLbFlavorDeprecated": "openstack_lb_flavor_v2",
        "openstack:networking/getNetwork:getNetwork": "openstack_networking_network_v2",
    }


def test_an_unpaired_token_or_name_fails_with_both_lists():
    with pytest.raises(ot.TokenMapError) as e:
        ot.match(
            [
                "openstack_compute_instance_v2",
                "openstack_compute_keypair_v2",
                "openstack_dns_zone_v2",
            ],
            {
                "openstack:compute/instance:Instance",
                "openstack:compute/sshKey:SshKey",
                "openstack:x/y:Y",
            },
            function=False,
        )
    # compute has one leftover of each, so they pair (tier 3); dns and x have nothing to pair
    assert str(e.value) == (
        "unpaired SDK tokens: ['openstack:x/y:Y']; Terraform names without a token: ['openstack_dns_zone_v2']"
    )


def test_a_token_matching_two_names_is_refused():
    with pytest.raises(ot.TokenMapError, match="openstack:index/fwRuleV2:FwRuleV2 matches several"):
        ot.match(
            ["openstack_fw_rule_v2", "openstack_fwrule_v2"],
            {"openstack:index/fwRuleV2:FwRuleV2"},
            False,
        )


def test_the_installed_sdk_tokens():
    resources, functions = ot.sdk_tokens(SDK)
    assert len(resources) == 114 and len(functions) == 65
    assert "openstack:compute/instance:Instance" in resources
    assert set(PROGRAM_DATA_SOURCES) <= functions
    assert not resources & functions


def test_the_go_source_is_a_table_per_kind():
    src = ot.go_source(
        [("openstack_a_v1", "openstack:a/a:A", 1)], [("openstack_b_v1", "openstack:b/getB:getB", 2)]
    )
    assert (
        'var resourceTokens = []tokenMapping{\n\t{"openstack_a_v1", "openstack:a/a:A"},\n}' in src
    )
    assert (
        'var dataSourceTokens = []tokenMapping{\n\t{"openstack_b_v1", "openstack:b/getB:getB"},\n}'
        in src
    )


@pytest.mark.engine
def test_the_built_provider_serves_every_sdk_token_on_the_right_terraform_name(engine):
    binary = engine.plugins / "resource-openstack-v5.5.3" / "pulumi-resource-openstack"
    info = json.loads(
        subprocess.run(
            [binary, "-get-provider-info"], capture_output=True, text=True, check=True
        ).stdout
    )
    resources, functions = ot.sdk_tokens(SDK)
    served = {
        kind: {v["tok"]: k for k, v in info[kind].items()} for kind in ("resources", "dataSources")
    }
    assert set(served["resources"]) == resources
    assert set(served["dataSources"]) == functions
    # 108 Terraform resources (114 tokens: six deprecated aliases on clones), 61 data sources
    assert len({k.split("_alias")[0] for k in info["resources"]}) == 108
    assert len({k.split("_alias")[0] for k in info["dataSources"]}) == 61
    for token, tf_name in PROGRAM_DATA_SOURCES.items():
        assert served["dataSources"][token] == tf_name
    assert (
        served["resources"]["openstack:compute/instance:Instance"]
        == "openstack_compute_instance_v2"
    )
    assert (
        served["resources"]["openstack:loadbalancer/loadBalancer:LoadBalancer"]
        == "openstack_lb_loadbalancer_v2"
    )
    version = subprocess.run([binary, "-version"], capture_output=True, text=True, check=True)
    assert version.stdout.strip() == "5.5.3"

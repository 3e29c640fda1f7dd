"""Generated local-network configurations: each one passes load_config and agrees with the others."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from scpd.base.keys import Keypair
from scpd.errors import UsageError
from scpd.operator.config import load_config
from scpd.operator.config_addresses import PeerAddress
from scpd.operator.config_node import NodeConfig
from scpd.operator.localnet_config import bft_threshold, localnet_configs, write_localnet


@pytest.mark.parametrize(("n", "threshold"), [(1, 1), (2, 2), (3, 3), (4, 3), (5, 4), (7, 5), (10, 7), (16, 11)])
def test_bft_threshold_is_n_minus_floor_of_n_minus_1_over_3(n: int, threshold: int) -> None:
    assert bft_threshold(n) == threshold


def _links(cfgs: list[NodeConfig], base: int) -> set[frozenset[int]]:
    return {frozenset({i, p.port - base}) for i, c in enumerate(cfgs) for p in c.peers}


@pytest.mark.parametrize("topology", ["full", "ring", "line"])
@pytest.mark.parametrize("n", [1, 4, 7])
def test_every_generated_config_passes_load_config(tmp_path: Path, n: int, topology: str) -> None:
    nodes = localnet_configs(
        n,
        peer_base_port=20000,
        http_base_port=21000,
        slot_interval=0.5,
        topology=topology,  # type: ignore[arg-type]
    )
    paths = write_localnet(tmp_path, nodes)
    cfgs = [load_config(p, strict=True) for p in paths]  # strict: not even a warning
    everyone = {node.keypair.public_key for node in nodes}
    assert len(everyone) == n
    for i, (node, cfg) in enumerate(zip(nodes, cfgs, strict=True)):
        assert stat.S_IMODE(paths[i].stat().st_mode) == 0o600
        assert cfg.node_id == node.keypair.public_key
        assert cfg.is_validator
        assert cfg.quorum_set.threshold == n - (n - 1) // 3
        assert set(cfg.quorum_set.validators) == everyone and not cfg.quorum_set.inner_sets
        assert cfg.quorum_set_hash == cfgs[0].quorum_set_hash
        assert cfg.network_id == cfgs[0].network_id
        assert cfg.listen == PeerAddress("127.0.0.1", 20000 + i)
        assert cfg.http_listen == PeerAddress("127.0.0.1", 21000 + i)
        assert cfg.timers.slot_interval == 0.5
        assert cfg.name_of(cfg.node_id) == node.name
        assert cfg.data_dir == tmp_path / f"{node.name}-data"
        assert all(p.host == "127.0.0.1" and p.port != cfg.listen.port for p in cfg.peers)
        assert cfg.overlay.target_outbound_peers == len(cfg.peers)
    links = _links(cfgs, 20000)
    # Each link is dialed by one side only.
    assert sum(len(c.peers) for c in cfgs) == len(links)
    expected = {
        "full": {frozenset({i, j}) for i in range(n) for j in range(i + 1, n)},
        "line": {frozenset({i, i + 1}) for i in range(n - 1)},
        "ring": {frozenset({i, (i + 1) % n}) for i in range(n)} if n > 2 else {frozenset({0, 1})} if n == 2 else set(),
    }[topology]
    assert links == expected
    if topology != "full":
        assert all(c.known_addresses == () for c in cfgs)


def test_given_keypairs_fix_the_identities() -> None:
    keys = [Keypair(bytes([i + 1]) * 32) for i in range(4)]
    nodes = localnet_configs(4, keypairs=keys)
    assert [n.keypair.public_key for n in nodes] == [k.public_key for k in keys]
    assert localnet_configs(4, keypairs=keys)[2].config_text == nodes[2].config_text


def test_odd_passphrase_round_trips_through_toml(tmp_path: Path) -> None:
    odd = 'quote " backslash \\ tab \t newline \n del \x7f unicode é'
    [path] = write_localnet(tmp_path, localnet_configs(1, passphrase=odd))
    assert load_config(path).network_passphrase == odd


def test_write_refuses_to_overwrite_unless_asked(tmp_path: Path) -> None:
    first = localnet_configs(2)
    write_localnet(tmp_path, first)
    second = localnet_configs(2)
    with pytest.raises(UsageError, match="already exists"):
        write_localnet(tmp_path, second)
    assert load_config(tmp_path / "node1.toml").node_id == first[0].keypair.public_key
    (tmp_path / "node1.toml").chmod(0o644)
    write_localnet(tmp_path, second, overwrite=True)
    assert load_config(tmp_path / "node1.toml").node_id == second[0].keypair.public_key
    assert stat.S_IMODE((tmp_path / "node1.toml").stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"n": 0}, "--nodes must be 1..100"),
        ({"n": 101}, "--nodes must be 1..100"),
        ({"n": 4, "peer_base_port": 65534}, "outside 1024..65535"),
        ({"n": 4, "peer_base_port": 80}, "outside 1024..65535"),
        ({"n": 4, "peer_base_port": 30000, "http_base_port": 30002}, "overlap"),
        ({"n": 4, "slot_interval": 0}, "slot interval"),
        ({"n": 4, "topology": "star"}, "unknown topology"),
        ({"n": 4, "keypairs": [Keypair(bytes(32))]}, "1 keypairs given for 4 nodes"),
    ],
)
def test_bad_localnet_arguments_are_usage_errors(kwargs: dict[str, object], problem: str) -> None:
    n = kwargs.pop("n")
    with pytest.raises(UsageError, match=problem):
        localnet_configs(n, **kwargs)  # type: ignore[arg-type]

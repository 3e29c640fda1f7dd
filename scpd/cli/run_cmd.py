"""``scpd run`` (one node) and ``scpd localnet`` (a local network of nodes)."""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import structlog

from scpd.operator.config import load_config
from scpd.operator.localnet import Localnet
from scpd.operator.logs import configure

log = structlog.get_logger("scpd.run")


def register(sub: Any) -> None:
    p = sub.add_parser("run", help="run a validator (or watcher) node")
    p.add_argument("--config", "-c", type=Path, required=True, help="the node's TOML configuration")
    p.set_defaults(handler=run_node_cmd)

    p = sub.add_parser("localnet", help="start a local network of validators on 127.0.0.1")
    p.add_argument("--nodes", "-n", type=int, default=4, help="number of validators (default 4)")
    p.add_argument("--dir", type=Path, help="configs and data (default: a new temporary directory)")
    p.add_argument("--slot-interval", type=float, default=5.0, help="seconds between slots (default 5)")
    p.add_argument("--slots", type=int, help="stop after this many slots (default: until Ctrl-C)")
    p.add_argument("--peer-base-port", type=int, help="first peer port (default 11700)")
    p.add_argument("--http-base-port", type=int, help="first admin HTTP port (default 11800)")
    p.set_defaults(handler=localnet_cmd)

    p = sub.add_parser(
        "localnet-config",
        help="write the configurations of a local (or docker-compose) network without starting it",
    )
    p.add_argument("--nodes", "-n", type=int, default=4, help="number of validators (default 4)")
    p.add_argument("--dir", type=Path, required=True, help="where to write <name>.toml for each node")
    p.add_argument("--slot-interval", type=float, default=5.0, help="seconds between slots (default 5)")
    p.add_argument("--docker", action="store_true", help="one container per node, reached by its name (compose)")
    p.add_argument("--keep-existing", action="store_true", help="do nothing if every file already exists")
    p.set_defaults(handler=localnet_config_cmd)


def run_event_loop(coro: Coroutine[Any, Any, int]) -> int:
    """Run on uvloop where it is installed, else on asyncio's default loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    result: int = uvloop.run(coro)
    return result


def run_node_cmd(args: argparse.Namespace) -> int:
    from scpd.operator.daemon import run_node

    cfg = load_config(args.config)
    known = [cfg.node_id, *(v.node_id for v in cfg.validators)]
    names = {str(n): name for n in known if (name := cfg.name_of(n))}
    configure(cfg.log.format, cfg.log.level, node=str(cfg.node_id), names=names)
    for warning in cfg.warnings:
        log.warning("configuration warning", key=warning.key, problem=warning.message)
    return run_event_loop(run_node(cfg))


def localnet_config_cmd(args: argparse.Namespace) -> int:
    from scpd.operator.localnet_config import ContainerLayout, localnet_configs, write_localnet

    specs = localnet_configs(
        args.nodes, slot_interval=args.slot_interval, containers=ContainerLayout() if args.docker else None
    )
    if args.keep_existing and all((args.dir / s.filename).exists() for s in specs):
        print(f"{args.dir}: configurations already present, kept")
        return 0
    for path in write_localnet(args.dir, specs):
        print(path)
    return 0


def localnet_cmd(args: argparse.Namespace) -> int:
    directory = args.dir or Path(tempfile.mkdtemp(prefix="scpd-localnet-"))
    net = Localnet(
        directory,
        args.nodes,
        slot_interval=args.slot_interval,
        slots=args.slots,
        peer_base_port=args.peer_base_port,
        http_base_port=args.http_base_port,
    )
    return run_event_loop(net.run())

"""Operator layer: what a person running a node touches.

The TOML configuration (``config`` and the ``config_*`` modules it reads
with), local-network generation (``localnet_config``), and, beside them in
``scpd.cli``, the command line. This layer may read files and the environment
and may import every layer below it (node, scp, base); nothing below may
import it.
"""

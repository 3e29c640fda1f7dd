"""Node configuration: every class of bad config is one line naming file, key path and problem.

Configurations are real files in a temporary directory; a few go through the
real ``scpd check-config`` in a subprocess to pin down the exit code and the
exact stderr line.
"""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import scpd.operator.config as config_module
from scpd.base import quorum
from scpd.base.keys import Keypair, network_id
from scpd.base.types import SCPQuorumSet
from scpd.errors import ConfigError
from scpd.node.overlay.settings import OverlaySettings
from scpd.nodecore.messages import PeerAddress as NodePeerAddress
from scpd.nodecore.pending import PendingLimits
from scpd.nodecore.settings import CoreSettings
from scpd.operator.config import load_config
from scpd.operator.config_addresses import PeerAddress, parse_address
from scpd.operator.config_node import ConfigWarning
from scpd.operator.config_quorum import format_quorum_set
from scpd.operator.config_sections import OverlaySection
from scpd.operator.daemon import herder_settings, overlay_settings

REPO = Path(__file__).resolve().parent.parent

# Fixed keys keep failures reproducible; index 0 is the node under test.
KEYS = [Keypair(bytes([i + 1]) * 32) for i in range(8)]
ME = KEYS[0]
SEED = ME.seed_strkey
PK = [str(k.public_key) for k in KEYS]


def base_config(quorum_set: str | None = None, extra: str = "", node_extra: str = "") -> str:
    """A valid validator config: alice (this node), bob, carol by name; two inner sets.

    Its quorum set has 3 top-level entries, too few to tolerate a failure, so
    it says ``unsafe_quorum = true`` (these tests are about everything else).
    """
    qset = (
        quorum_set
        or f"""
[quorum_set]
threshold = 3
unsafe_quorum = true
validators = ["alice"]

[[quorum_set.inner_sets]]
threshold = 2
validators = ["bob", "carol"]

[[quorum_set.inner_sets]]
threshold_percent = 67
validators = ["{PK[3]}", "{PK[4]}", "{PK[5]}"]
"""
    )
    return f"""
[node]
seed = "{SEED}"
{node_extra}

[network]
passphrase = "test network"

[[validators]]
name = "alice"
public_key = "{PK[0]}"

[[validators]]
name = "bob"
public_key = "{PK[1]}"
address = "127.0.0.1:12001"

[[validators]]
name = "carol"
public_key = "{PK[2]}"
{qset}
{extra}
"""


@pytest.fixture(autouse=True)
def _without_quorum_analysis(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests pin the loader; the quorum analysis it also runs has its own tests
    (test_config_quorum_analysis.py). In-process only: the CLI tests below see it."""
    monkeypatch.setattr(config_module, "quorum_intersection_warnings", lambda cfg: [])


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    def _write(text: str, name: str = "node.toml", mode: int = 0o600) -> Path:
        path = tmp_path / name
        path.write_text(text)
        path.chmod(mode)
        return path

    return _write


def config_error(path: Path, **kwargs: object) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path, **kwargs)  # type: ignore[arg-type]
    message = str(info.value)
    assert "\n" not in message
    assert info.value.exit_code == 2
    # Translated, not chained: nothing of pydantic's dump rides along.
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__
    return message


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scpd", *args], cwd=REPO, capture_output=True, text=True, timeout=60, env=env
    )


# -- a good configuration ----------------------------------------------------


def test_valid_config_resolves_everything_with_documented_defaults(write: Callable[..., Path]) -> None:
    path = write(base_config())
    cfg = load_config(path)
    assert cfg.node_id == ME.public_key
    assert cfg.is_validator is True
    assert cfg.network_passphrase == "test network"
    assert cfg.network_id == network_id("test network")
    assert cfg.timers.slot_interval == 5.0
    assert cfg.timers.nomination_timeout_initial == 1.0 and cfg.timers.nomination_timeout_increment == 1.0
    assert cfg.timers.ballot_timeout_initial == 1.0 and cfg.timers.ballot_timeout_increment == 1.0
    assert cfg.timers.max_timeout == 1800.0
    assert cfg.listen == PeerAddress("0.0.0.0", 11625)
    assert cfg.http_listen == PeerAddress("127.0.0.1", 11626)
    assert cfg.metrics_enabled and cfg.metrics_listen is None
    assert (cfg.log.format, cfg.log.level) == ("auto", "info")
    assert cfg.data_dir == path.parent / "data"
    assert cfg.peers == ()
    assert cfg.known_addresses == (PeerAddress("127.0.0.1", 12001),)
    assert cfg.warnings == ()
    assert cfg.quorum_set_hash == quorum.quorum_set_hash(cfg.quorum_set)


def test_names_and_strkeys_resolve_to_the_same_keys(write: Callable[..., Path]) -> None:
    cfg = load_config(write(base_config()))
    k = [kp.public_key for kp in KEYS]
    assert cfg.quorum_set == SCPQuorumSet(
        3, (k[0],), (SCPQuorumSet(2, (k[1], k[2])), SCPQuorumSet(3, (k[3], k[4], k[5])))
    )
    assert cfg.name_of(k[1]) == "bob"
    assert cfg.name_of(k[3]) is None
    assert [(v.name, v.node_id) for v in cfg.validators] == [("alice", k[0]), ("bob", k[1]), ("carol", k[2])]
    lines = format_quorum_set(cfg.quorum_set, cfg.label)
    assert lines[0] == "3 of 3:"
    assert f"  alice ({k[0]})" in lines
    assert f"    {k[3]}" in lines


@pytest.mark.parametrize(
    ("entries", "percent"),
    [(1, 1), (3, 67), (4, 67), (4, 51), (7, 67), (5, 50), (10, 100), (3, 34), (100, 67), (9, 66)],
)
def test_threshold_percent_rounds_up(write: Callable[..., Path], entries: int, percent: int) -> None:
    names = [f'"{k.public_key}"' for k in (Keypair(bytes([100 + i]) * 32) for i in range(entries))]
    qset = f"[quorum_set]\nthreshold_percent = {percent}\nunsafe_quorum = true\nvalidators = [{', '.join(names)}]\n"
    cfg = load_config(write(base_config(quorum_set=qset)))
    assert cfg.quorum_set.threshold == math.ceil(entries * percent / 100)
    assert cfg.quorum_set.threshold == -(-entries * percent // 100)


def test_seed_file_and_seed_env_give_the_same_key(write: Callable[..., Path], tmp_path: Path) -> None:
    (tmp_path / "node.seed").write_text(SEED + "\n")
    (tmp_path / "node.seed").chmod(0o600)
    from_file = load_config(write(base_config().replace(f'seed = "{SEED}"', 'seed_file = "node.seed"')))
    from_env = load_config(
        write(base_config().replace(f'seed = "{SEED}"', 'seed_env = "MY_SEED"')), environ={"MY_SEED": SEED}
    )
    assert from_file.node_id == from_env.node_id == ME.public_key
    assert from_file.warnings == from_env.warnings == ()


def test_seed_file_is_relative_to_the_config_directory_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sub = tmp_path / "etc"
    sub.mkdir()
    (sub / "node.seed").write_text(SEED)
    (sub / "node.seed").chmod(0o600)
    path = sub / "node.toml"
    path.write_text(base_config().replace(f'seed = "{SEED}"', 'seed_file = "node.seed"'))
    path.chmod(0o600)
    monkeypatch.chdir(tmp_path)
    cfg = load_config(Path("etc/node.toml"))
    assert cfg.node_id == ME.public_key
    assert cfg.data_dir == sub.absolute() / "data"


def test_a_four_level_quorum_set_is_accepted(write: Callable[..., Path]) -> None:
    qset = f"""
[quorum_set]
threshold = 2
unsafe_quorum = true
validators = ["alice"]
[[quorum_set.inner_sets]]
threshold = 1
validators = ["bob"]
[[quorum_set.inner_sets.inner_sets]]
threshold = 1
validators = ["carol"]
[[quorum_set.inner_sets.inner_sets.inner_sets]]
threshold = 1
validators = ["{PK[3]}"]
"""
    cfg = load_config(write(base_config(quorum_set=qset)))
    assert cfg.quorum_set.inner_sets[0].inner_sets[0].inner_sets[0].validators == (KEYS[3].public_key,)


def test_overlay_addresses_parse_including_ipv6(write: Callable[..., Path]) -> None:
    peers = '["[::1]:11625", "peer.example.org:1", "10.0.0.1:65535"]'
    extra = f'[overlay]\nlisten_address = "::"\nlisten_port = 0\npeers = {peers}\n'
    cfg = load_config(write(base_config(extra=extra)))
    assert cfg.listen == PeerAddress("::", 0)
    assert cfg.peers == (PeerAddress("::1", 11625), PeerAddress("peer.example.org", 1), PeerAddress("10.0.0.1", 65535))
    assert str(cfg.peers[0]) == "[::1]:11625"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("nohost", "is not host:port"),
        (":11625", "is not host:port"),
        ("::1:11625", "in brackets"),
        ("[::1]11625", "is not host:port"),
        ("host:port", "is not a number"),
        ("host:0", "out of range"),
        ("host:65536", "out of range"),
        ("bad host:1", "is not a host name"),
    ],
)
def test_parse_address_refuses_malformed(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_address(text)


# -- every class of bad configuration: one line, file, key path, problem ------

BAD = [
    # (id, transform of the base config, key path, problem)
    ("unknown-top-level-key", lambda c: "bogus = 1\n" + c, "bogus", "unknown key"),
    ("unknown-section", lambda c: c + "\n[nodes]\nx = 1\n", "nodes", "unknown section (did you mean [node]?)"),
    (
        "unknown-array-of-tables",
        lambda c: c + f'\n[[validator]]\npublic_key = "{PK[6]}"\n',
        "validator",
        "unknown section (did you mean [[validators]]?)",
    ),
    (
        "unknown-key-with-suggestion",
        lambda c: c + "\n[timers]\nslot_intervall = 2.0\n",
        "timers.slot_intervall",
        "unknown key (did you mean 'slot_interval'?)",
    ),
    (
        "unknown-key-in-inner-set",
        lambda c: c.replace("threshold_percent = 67", "threshold_percent = 67\nthreshhold = 1"),
        "quorum_set.inner_sets[1].threshhold",
        "unknown key (did you mean 'threshold'?)",
    ),
    (
        "wrong-type-number",
        lambda c: c + '\n[timers]\nslot_interval = "5"\n',
        "timers.slot_interval",
        "expected a number, got a string",
    ),
    (
        "wrong-type-bool",
        lambda c: c.replace("[network]", 'is_validator = "yes"\n[network]'),
        "node.is_validator",
        "expected a boolean (true or false), got a string",
    ),
    (
        "wrong-type-integer",
        lambda c: c.replace("threshold = 3", "threshold = 3.0"),
        "quorum_set.threshold",
        "expected an integer, got a float",
    ),
    ("wrong-type-section", lambda c: 'log = "debug"\n' + c, "log", "expected a table, got a string"),
    (
        "wrong-type-array",
        lambda c: c.replace('validators = ["alice"]', 'validators = "alice"'),
        "quorum_set.validators",
        "expected an array, got a string",
    ),
    ("not-finite", lambda c: c + "\n[timers]\nslot_interval = inf\n", "timers.slot_interval", "finite number"),
    ("below-minimum", lambda c: c + "\n[timers]\nslot_interval = 0\n", "timers.slot_interval", "must be > 0, got 0"),
    (
        "not-one-of",
        lambda c: c + '\n[log]\nlevel = "verbose"\n',
        "log.level",
        "must be 'debug', 'info', 'warning' or 'error', got 'verbose'",
    ),
    (
        "missing-section",
        lambda c: c.replace("[network]", "[ledger]").replace('passphrase = "test network"', ""),
        "network",
        "required section is missing",
    ),
    (
        "missing-key",
        lambda c: c.replace('passphrase = "test network"', ""),
        "network.passphrase",
        "required key is missing",
    ),
    ("empty-passphrase", lambda c: c.replace('"test network"', '""'), "network.passphrase", "must not be empty"),
    (
        "bad-strkey-validator",
        lambda c: c.replace(PK[1], PK[1][:-1] + ("A" if PK[1][-1] != "A" else "B")),
        "validators[1].public_key",
        "not a public key (G...)",
    ),
    (
        "bad-strkey-in-quorum-set",
        lambda c: c.replace(f'"{PK[4]}"', f'"{PK[4][:-2]}"'),
        "quorum_set.inner_sets[1].validators[1]",
        "not a public key (G...): expected 56 characters",
    ),
    (
        "seed-in-public-key-slot",
        lambda c: c.replace(f'public_key = "{PK[2]}"', f'public_key = "{KEYS[2].seed_strkey}"'),
        "validators[2].public_key",
        "this strkey is a secret seed",
    ),
    (
        "unknown-validator-name",
        lambda c: c.replace('["bob", "carol"]', '["bob", "carrol"]'),
        "quorum_set.inner_sets[0].validators[1]",
        "unknown validator name 'carrol': no [[validators]] entry has it (did you mean 'carol'?)",
    ),
    (
        "threshold-above-entries",
        lambda c: c.replace("threshold = 2\n", "threshold = 5\n"),
        "quorum_set.inner_sets[0].threshold",
        "5 is out of range: this set has 2 entries, so 1..2",
    ),
    (
        "threshold-zero",
        lambda c: c.replace("threshold = 3", "threshold = 0"),
        "quorum_set.threshold",
        "must be >= 1, got 0",
    ),
    (
        "threshold-percent-above-100",
        lambda c: c.replace("threshold_percent = 67", "threshold_percent = 101"),
        "quorum_set.inner_sets[1].threshold_percent",
        "must be <= 100, got 101",
    ),
    (
        "both-thresholds",
        lambda c: c.replace("threshold = 3", "threshold = 3\nthreshold_percent = 50"),
        "quorum_set",
        "set exactly one of threshold, threshold_percent",
    ),
    (
        "no-threshold",
        lambda c: c.replace("threshold = 2\n", ""),
        "quorum_set.inner_sets[0]",
        "set exactly one of threshold, threshold_percent",
    ),
    (
        "duplicate-in-quorum-set",
        lambda c: c.replace('["bob", "carol"]', f'["bob", "{PK[0]}"]'),
        "quorum_set.inner_sets[0].validators[1]",
        "already appears at quorum_set.validators[0]",
    ),
    (
        "empty-inner-set",
        lambda c: c.replace('validators = ["bob", "carol"]', "validators = []"),
        "quorum_set.inner_sets[0]",
        "empty quorum set",
    ),
    (
        "duplicate-validator-key",
        lambda c: c.replace(f'public_key = "{PK[2]}"', f'public_key = "{PK[1]}"'),
        "validators[2].public_key",
        "is already listed as validators[1]",
    ),
    (
        "duplicate-validator-name",
        lambda c: c.replace('name = "carol"', 'name = "bob"'),
        "validators[2].name",
        "'bob' is already used by validators[1]",
    ),
    (
        "bad-validator-name",
        lambda c: c.replace('name = "carol"', 'name = "carol smith"'),
        "validators[2].name",
        "must be 1-32 letters",
    ),
    (
        "bad-peer-address",
        lambda c: c + '\n[overlay]\npeers = ["a.example:1", "b.example:70000"]\n',
        "overlay.peers[1]",
        "port 70000 is out of range",
    ),
    ("no-seed", lambda c: c.replace(f'seed = "{SEED}"', ""), "node", "set exactly one of seed, seed_file, seed_env"),
    (
        "two-seeds",
        lambda c: c.replace(f'seed = "{SEED}"', f'seed = "{SEED}"\nseed_env = "X"'),
        "node",
        "set exactly one of seed, seed_file, seed_env (found seed, seed_env)",
    ),
    (
        "public-key-is-not-the-seeds",
        lambda c: c.replace("[network]", f'public_key = "{PK[1]}"\n[network]'),
        "node.public_key",
        f"does not match the seed, whose public key is {PK[0]}",
    ),
    (
        "peer-timeout-below-keepalive",
        lambda c: c + "\n[overlay]\nkeepalive_interval = 10.0\npeer_timeout = 10\n",
        "overlay.peer_timeout",
        "must exceed overlay.keepalive_interval",
    ),
    (
        "message-too-small-for-tx-set",
        lambda c: c + "\n[overlay]\nmax_message_size = 65536\n",
        "overlay.max_message_size",
        "cannot carry a full transaction set",
    ),
    (
        "max-timeout-below-initial",
        lambda c: c + "\n[timers]\nballot_timeout_initial = 10.0\nmax_timeout = 5.0\n",
        "timers.max_timeout",
        "below the initial timeouts",
    ),
    (
        "metrics-without-listener",
        lambda c: c + "\n[http]\nenabled = false\n",
        "metrics",
        "nothing serves /metrics",
    ),
    (
        "port-clash",
        lambda c: c + '\n[http]\naddress = "0.0.0.0"\nport = 11625\n',
        "http.port",
        "port 11625 is already used by overlay.listen_port",
    ),
    (
        "several-errors-all-listed",
        lambda c: c + "\n[timers]\nslot_interval = -1\nmax_timeout = -1\n",
        "timers.slot_interval",
        "must be > 0, got -1; timers.max_timeout: must be > 0, got -1",
    ),
]


@pytest.mark.parametrize(("transform", "key", "problem"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_config_is_one_line_naming_file_key_and_problem(
    write: Callable[..., Path], transform: Callable[[str], str], key: str, problem: str
) -> None:
    path = write(transform(base_config()))
    message = config_error(path)
    assert message.startswith(f"{path}: {key}: "), message
    assert problem in message, message
    assert SEED not in message


def test_toml_syntax_error_names_file_and_line(write: Callable[..., Path]) -> None:
    path = write(base_config() + "\n[timers]\nslot_interval = = 5\n")
    message = config_error(path)
    assert message.startswith(f"{path}: TOML syntax error: ")
    assert "line" in message


def test_duplicate_toml_key_is_a_syntax_error(write: Callable[..., Path]) -> None:
    path = write(base_config() + '\n[log]\nlevel = "info"\nlevel = "debug"\n')
    assert config_error(path).startswith(f"{path}: TOML syntax error: ")


def test_file_not_found(tmp_path: Path) -> None:
    path = tmp_path / "missing.toml"
    assert config_error(path) == f"{path}: file not found"


def test_config_path_that_is_a_directory(tmp_path: Path) -> None:
    assert config_error(tmp_path) == f"{tmp_path}: is a directory, not a configuration file"


def test_config_that_is_not_utf8(write: Callable[..., Path], tmp_path: Path) -> None:
    path = tmp_path / "bin.toml"
    path.write_bytes(b'[node]\nseed = "\xff\xfe"\n')
    assert config_error(path).startswith(f"{path}: not UTF-8 text")


def test_nesting_deeper_than_four_levels_is_refused(write: Callable[..., Path]) -> None:
    levels = ['[quorum_set]\nthreshold = 1\nvalidators = ["alice"]\n']
    table = "quorum_set"
    for i in range(1, 5):
        table += ".inner_sets"
        levels.append(f'[[{table}]]\nthreshold = 1\nvalidators = ["{PK[i]}"]\n')
    path = write(base_config(quorum_set="\n".join(levels)))
    message = config_error(path)
    deep = "quorum_set" + ".inner_sets[0]" * 4
    assert message == f"{path}: {deep}: quorum sets nest at most 4 levels deep (this is level 5)"


def test_quorum_set_over_1000_validators_is_refused(write: Callable[..., Path]) -> None:
    keys = [f'"{Keypair(i.to_bytes(32, "big")).public_key}"' for i in range(1, 1002)]
    qset = f"[quorum_set]\nthreshold = 600\nvalidators = [{', '.join(keys)}]\n"
    path = write(base_config(quorum_set=qset))
    assert config_error(path) == f"{path}: quorum_set: names 1001 validators, at most 1000"


@pytest.mark.parametrize(
    ("setup", "problem"),
    [
        (lambda d: None, "file not found"),
        (lambda d: (d / "node.seed").mkdir(), "is a directory"),
        (lambda d: (d / "node.seed").write_bytes(b"\x00\xff\x80 binary"), "does not hold a seed (not ASCII text)"),
        (lambda d: (d / "node.seed").write_text("  \n"), "is empty"),
        (lambda d: (d / "node.seed").write_text("x" * 5000), "too large to be a seed file"),
        (lambda d: (d / "node.seed").write_text(PK[0]), "does not hold a valid seed: not a secret seed (S...)"),
        (lambda d: (d / "node.seed").write_text(SEED[:-1] + "A"), "does not hold a valid seed"),
    ],
    ids=["missing", "directory", "binary", "empty", "huge", "public-key", "bad-checksum"],
)
def test_unreadable_or_malformed_seed_file(
    write: Callable[..., Path], tmp_path: Path, setup: Callable[[Path], None], problem: str
) -> None:
    setup(tmp_path)
    path = write(base_config().replace(f'seed = "{SEED}"', 'seed_file = "node.seed"'))
    message = config_error(path)
    assert message.startswith(f"{path}: node.seed_file: {tmp_path / 'node.seed'}: "), message
    assert problem in message


@pytest.mark.parametrize(
    ("environ", "problem"),
    [
        ({}, "environment variable SCPD_TEST_SEED is not set"),
        ({"SCPD_TEST_SEED": " "}, "environment variable SCPD_TEST_SEED is empty"),
        (
            {"SCPD_TEST_SEED": "SNOTASEED"},
            "does not hold a valid seed: not a secret seed (S...): expected 56 characters",
        ),
    ],
)
def test_seed_env_missing_or_bad(write: Callable[..., Path], environ: dict[str, str], problem: str) -> None:
    path = write(base_config().replace(f'seed = "{SEED}"', 'seed_env = "SCPD_TEST_SEED"'))
    message = config_error(path, environ=environ)
    assert message.startswith(f"{path}: node.seed_env: ") and problem in message


def test_seed_env_must_be_a_variable_name(write: Callable[..., Path]) -> None:
    path = write(base_config().replace(f'seed = "{SEED}"', 'seed_env = "$SEED"'))
    assert config_error(path, environ={}).startswith(f"{path}: node.seed_env: must be an environment variable name")


# -- the seed is a secret ----------------------------------------------------


def _fragments(secret: str) -> list[str]:
    """The secret and every 16-character piece of it: a partial leak counts too."""
    return [secret] + [secret[i : i + 16] for i in range(0, len(secret) - 15, 8)]


def test_seed_never_in_repr_or_str_of_the_loaded_config(write: Callable[..., Path]) -> None:
    cfg = load_config(write(base_config()))
    for text in (repr(cfg), str(cfg), repr(cfg.keypair), str(cfg.warnings), repr(cfg.overlay)):
        for piece in _fragments(SEED):
            assert piece not in text


def test_seed_never_in_validation_model_repr() -> None:
    from scpd.operator.config_sections import NodeSection

    section = NodeSection.model_validate({"seed": SEED})
    assert SEED not in repr(section) and SEED not in str(section) and SEED not in str(section.model_dump())


@pytest.mark.parametrize(
    "transform",
    [
        lambda c: c.replace(SEED, SEED[:-1] + ("A" if SEED[-1] != "A" else "B")),  # checksum mismatch
        lambda c: c.replace(f'"{SEED}"', f'"{SEED}x"'),  # wrong length
        lambda c: c.replace(f'"{SEED}"', f'"{SEED.lower()}"'),  # not base32
        lambda c: c.replace(f'seed = "{SEED}"', f'seed = ["{SEED}"]'),  # wrong type
        lambda c: c.replace(f'seed = "{SEED}"', f'seed = "{SEED}"\nseed_file = "{SEED}"'),  # two sources
        lambda c: c.replace(f'seed = "{SEED}"', f'seed_file = "{SEED}"'),  # seed pasted as a file name
        lambda c: c.replace(f'seed = "{SEED}"', f'seed_env = "{SEED}"'),  # seed pasted as a variable name
        lambda c: c.replace("[network]", f'sede = "{SEED}"\n[network]'),  # misspelt key
        lambda c: c + f'\n[log]\nlevel = "{SEED}"\n',  # pasted in the wrong place
        lambda c: c.replace(f'seed = "{SEED}"', f'seed = "{SEED}\n'),  # TOML syntax error on the seed line
    ],
    ids=["checksum", "length", "base32", "type", "two-sources", "as-file", "as-env", "misspelt", "elsewhere", "syntax"],
)
def test_seed_never_in_error_messages(write: Callable[..., Path], transform: Callable[[str], str]) -> None:
    message = config_error(write(transform(base_config())), environ={})
    for piece in _fragments(SEED) + _fragments(SEED.lower()):
        assert piece not in message, message


def test_seed_from_file_never_in_error_messages(write: Callable[..., Path], tmp_path: Path) -> None:
    bad = SEED[:-1] + ("A" if SEED[-1] != "A" else "B")
    (tmp_path / "node.seed").write_text(bad)
    message = config_error(write(base_config().replace(f'seed = "{SEED}"', 'seed_file = "node.seed"')))
    assert "checksum mismatch" in message
    for piece in _fragments(bad):
        assert piece not in message


# -- warnings, and --strict --------------------------------------------------


def test_validator_missing_from_its_own_quorum_set_is_a_warning(write: Callable[..., Path]) -> None:
    path = write(
        base_config()
        .replace('validators = ["alice"]', 'validators = ["bob"]')
        .replace('["bob", "carol"]', f'["carol", "{PK[6]}"]')
    )
    cfg = load_config(path)
    assert [w.key for w in cfg.warnings] == ["quorum_set"]
    assert "not in its own quorum set" in cfg.warnings[0].message
    assert config_error(path, strict=True).startswith(f"{path}: quorum_set: this validator")


def test_watcher_need_not_be_in_the_quorum_set(write: Callable[..., Path]) -> None:
    text = base_config(node_extra="is_validator = false")
    text = text.replace('validators = ["alice"]', 'validators = ["bob"]').replace(
        '["bob", "carol"]', f'["carol", "{PK[6]}"]'
    )
    cfg = load_config(write(text), strict=True)
    assert cfg.is_validator is False and cfg.warnings == ()


def not_majority(config: str) -> str:
    """The base config with its second inner set at 1 of 3 (not a strict majority)."""
    return config.replace("threshold_percent = 67", "threshold = 1")


def test_threshold_that_is_not_a_majority_is_a_warning_when_unsafe_quorum(write: Callable[..., Path]) -> None:
    path = write(not_majority(base_config()))
    cfg = load_config(path)
    assert cfg.warnings == (
        ConfigWarning(
            "quorum_set.inner_sets[1].threshold",
            "threshold 1 of 3 is not a strict majority: two disjoint groups could each reach a quorum "
            "(safety needs more than half)",
        ),
    )
    assert config_error(path, strict=True).startswith(f"{path}: quorum_set.inner_sets[1].threshold: threshold 1 of 3")


def test_secrets_readable_by_others_are_warnings(write: Callable[..., Path], tmp_path: Path) -> None:
    inline = write(base_config(), name="inline.toml", mode=0o644)
    [w] = load_config(inline).warnings
    assert w.key == "node.seed" and "readable by other users (mode 0644)" in w.message

    (tmp_path / "node.seed").write_text(SEED)
    (tmp_path / "node.seed").chmod(0o640)
    from_file = write(base_config().replace(f'seed = "{SEED}"', 'seed_file = "node.seed"'), mode=0o644)
    [w] = load_config(from_file).warnings
    assert w.key == "node.seed_file" and "mode 0640" in w.message
    # The config itself holds no secret here, so its own mode is fine.
    (tmp_path / "node.seed").chmod(0o600)
    assert load_config(from_file).warnings == ()


def test_strict_lists_every_warning(write: Callable[..., Path]) -> None:
    path = write(not_majority(base_config()), mode=0o644)
    message = config_error(path, strict=True)
    assert message.startswith(f"{path}: node.seed: the seed is inline")
    assert "; quorum_set.inner_sets[1].threshold: threshold 1 of 3 is not a strict majority" in message


# -- through the real command line -------------------------------------------


def test_check_config_prints_summary_and_exits_0(write: Callable[..., Path]) -> None:
    path = write(base_config())
    result = run_cli("check-config", str(path))
    assert result.returncode == 0, result.stderr
    cfg = load_config(path)
    assert f"{path}: OK" in result.stdout
    assert f"alice ({PK[0]}), validator" in result.stdout
    assert cfg.quorum_set_hash.hex() in result.stdout
    assert f"bob ({PK[1]})" in result.stdout and "3 of 3:" in result.stdout
    # Only the quorum analysis speaks up: with 3 of 3 entries, losing bob (or carol, ...) halts alice.
    assert result.stderr.startswith(f"scpd: warning: {path}: quorum_set: a single node failing halts")
    assert len(result.stderr.splitlines()) == 1
    for piece in _fragments(SEED):
        assert piece not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("transform", "line"),
    [
        (
            lambda c: c.replace("threshold = 2\n", "threshold = 5\n"),
            "quorum_set.inner_sets[0].threshold: 5 is out of range",
        ),
        (lambda c: c + "\n[overlay]\nmax_inbound = 3\n", "overlay.max_inbound: unknown key"),
        (
            lambda c: c.replace(SEED, SEED[:-1] + ("A" if SEED[-1] != "A" else "B")),
            "node.seed: the inline seed does not hold a valid seed",
        ),
    ],
    ids=["threshold", "unknown-key", "bad-seed"],
)
def test_check_config_bad_file_is_one_stderr_line_and_exit_2(
    write: Callable[..., Path], transform: Callable[[str], str], line: str
) -> None:
    path = write(transform(base_config()))
    result = run_cli("check-config", str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"scpd: error: {path}: {line}"), result.stderr
    for piece in _fragments(SEED):
        assert piece not in result.stderr


def test_check_config_strict_refuses_warnings(write: Callable[..., Path]) -> None:
    path = write(not_majority(base_config()))
    relaxed = run_cli("check-config", str(path))
    assert relaxed.returncode == 0
    assert relaxed.stderr.startswith(f"scpd: warning: {path}: quorum_set.inner_sets[1].threshold: threshold 1 of 3")
    strict = run_cli("check-config", "--strict", str(path))
    assert strict.returncode == 2
    assert strict.stderr.startswith(f"scpd: error: {path}: quorum_set.inner_sets[1].threshold: threshold 1 of 3")


@pytest.mark.parametrize("example", ["validator.toml", "watcher.toml"])
def test_example_configs_are_refused_for_their_published_seed_only(example: str, tmp_path: Path) -> None:
    path = REPO / "config" / example
    result = run_cli("check-config", str(path))
    assert result.returncode == 2
    assert result.stderr == (
        f"scpd: error: {path}: node.seed: this is the example seed published in config/{example}: "
        "anyone can sign as this node; generate your own with `scpd keygen --out node.seed`\n"
    )
    text = path.read_text()
    published = Keypair.from_seed_strkey(text.split('seed = "')[1].split('"')[0])
    mine = Keypair.random()
    own = tmp_path / example
    own.write_text(
        text.replace(published.seed_strkey, mine.seed_strkey).replace(str(published.public_key), str(mine.public_key))
    )
    own.chmod(0o600)
    result = run_cli("check-config", str(own))
    assert result.returncode == 0, result.stderr
    assert f"{own}: OK" in result.stdout and str(mine.public_key) in result.stdout
    assert result.stderr == ""  # a safe quorum set, nothing to warn about


def test_redaction_hides_seed_shapes_but_not_public_keys() -> None:
    from scpd.operator.config_messages import redact_secrets

    text = f"key {PK[0]} seed {SEED} low {SEED.lower()} path /x/{SEED[:30]}"
    out = redact_secrets(text)
    assert PK[0] in out
    for piece in _fragments(SEED) + _fragments(SEED.lower()):
        assert piece not in out


def test_transaction_size_is_capped_at_the_protocol_limit(write: Callable[..., Path]) -> None:
    from scpd.nodecore.values import MAX_TX_SIZE

    extra = f"[ledger]\nmax_tx_size = {MAX_TX_SIZE + 1}\nmax_tx_set_size = {4 * MAX_TX_SIZE}\n"
    path = write(base_config(extra=f"[overlay]\nmax_message_size = {8 * MAX_TX_SIZE}\n" + extra))
    assert config_error(path) == f"{path}: ledger.max_tx_size: must be <= {MAX_TX_SIZE}, got {MAX_TX_SIZE + 1}"


def test_intake_limits_reach_the_herder(write: Callable[..., Path]) -> None:
    defaults = herder_settings(load_config(write(base_config())))
    assert (defaults.max_slots_ahead, defaults.max_waiting_envelopes) == (12, 1000)
    assert defaults.pending_limits == PendingLimits() and defaults.signature_cache == CoreSettings().signature_cache
    extra = (
        "[intake]\nmax_slots_ahead = 4\nmax_waiting_envelopes = 10\npending_per_node = 3\n"
        "pending_per_node_bytes = 8192\npending_total = 30\npending_total_bytes = 65536\n"
        "signature_cache = 100\nmax_trusted_nodes = 50\n"
    )
    s = herder_settings(load_config(write(base_config(extra=extra))))
    assert (s.max_slots_ahead, s.max_waiting_envelopes, s.signature_cache, s.max_trusted_nodes) == (4, 10, 100, 50)
    assert s.pending_limits == PendingLimits(per_node=3, per_node_bytes=8192, total=30, total_bytes=65536)
    message = config_error(write(base_config(extra="[intake]\npending_total = 0\n")))
    assert "intake.pending_total" in message


OVERLAY_EVERY_KEY = """[overlay]
listen_address = "127.0.0.2"
listen_port = 21625
peers = ["127.0.0.3:21625"]
max_inbound_peers = 5
target_outbound_peers = 3
max_message_size = 2097152
handshake_timeout = 4.0
keepalive_interval = 2.0
peer_timeout = 20.0
reconnect_initial = 0.5
reconnect_max = 7.0
send_queue_size = 300
ban_duration = 120.0
max_pending_handshakes = 9
send_queue_bytes = 33554432
answer_rate = 1048576
answer_burst = 8388608
answer_ratio = 0.5
answer_total_rate = 2097152
answer_total_burst = 16777216
new_key_interval = 30.0
"""


def test_every_overlay_key_reaches_the_overlay_under_its_own_name(write: Callable[..., Path]) -> None:
    cfg = load_config(write(base_config(extra=OVERLAY_EVERY_KEY)))
    settings = overlay_settings(cfg)
    defaults = OverlaySection()
    for key in OverlaySection.model_fields:
        if key != "peers":
            assert getattr(settings, key) == getattr(cfg.overlay, key) != getattr(defaults, key), key
    assert settings.peers == (NodePeerAddress("127.0.0.3", 21625),)
    assert settings.network_passphrase == cfg.network_passphrase
    assert settings.preferred_nodes == quorum.all_validators(cfg.quorum_set)
    assert herder_settings(cfg).catchup.max_message_size == 2097152


def test_queue_and_answer_bursts_are_raised_to_hold_two_of_the_largest_messages(write: Callable[..., Path]) -> None:
    low = "[overlay]\nsend_queue_bytes = 65536\nanswer_burst = 4096\nanswer_total_burst = 1048576\n"
    settings = overlay_settings(load_config(write(base_config(extra=low))))
    floor = 2 * OverlaySection().max_message_size
    assert (settings.send_queue_bytes, settings.answer_burst, settings.answer_total_burst) == (floor, floor, floor)
    high = f"[overlay]\nsend_queue_bytes = {floor + 1}\nanswer_burst = {floor + 2}\nanswer_total_burst = {floor + 3}\n"
    settings = overlay_settings(load_config(write(base_config(extra=high))))
    assert (settings.send_queue_bytes, settings.answer_burst, settings.answer_total_burst) == (
        floor + 1,
        floor + 2,
        floor + 3,
    )


def test_an_overlay_key_is_declared_once_with_its_default_in_the_section_only() -> None:
    fields = {f.name: f for f in dataclasses.fields(OverlaySettings)}
    for key in OverlaySection.model_fields:
        assert key in fields, f"[overlay] {key} has no setting of the same name"
        assert fields[key].default is dataclasses.MISSING, f"{key}: a second default beside the section's"
        assert fields[key].default_factory is dataclasses.MISSING, key

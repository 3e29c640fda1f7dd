"""Unsafe quorum sets and published seeds are refused (issue 11, defect 6).

stellar-core refuses, unless ``UNSAFE_QUORUM=true``, a quorum set that does
not tolerate ``FAILURE_SAFETY`` failures (default ``floor((n - 1) / 3)`` for n
top-level entries, and 0 is not allowed) or whose thresholds are too low
(two thirds at the top, a majority below). scpd applies the same rules; the
waiver is ``unsafe_quorum = true`` in ``[quorum_set]``. A set in which no
other validator can ever lead nomination (1 of n including this node) is
refused even then, and so are the seeds printed in ``config/*.toml``.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import scpd.operator.config as config_module
from scpd.base import quorum
from scpd.base.keys import Keypair
from scpd.base.types import NodeID, SCPQuorumSet
from scpd.errors import ConfigError
from scpd.operator.config import load_config
from scpd.operator.config_quorum import quorum_safety_problems

REPO = Path(__file__).resolve().parent.parent
KEYS = [Keypair(bytes([i + 1]) * 32) for i in range(10)]
ME = KEYS[0]
PK = [str(k.public_key) for k in KEYS]
WAIVER = "(write unsafe_quorum = true in [quorum_set] to run it anyway)"


@pytest.fixture(autouse=True)
def _without_quorum_analysis(monkeypatch: pytest.MonkeyPatch) -> None:
    """The analysis warnings have their own tests; these pin the refusals."""
    monkeypatch.setattr(config_module, "quorum_intersection_warnings", lambda cfg: [])


def config(qset: str, *, seed: str = ME.seed_strkey, passphrase: str = "test network") -> str:
    return f'[node]\nseed = "{seed}"\n\n[network]\npassphrase = "{passphrase}"\n\n[quorum_set]\n{qset}\n'


def flat(threshold: int, n: int, *, unsafe: bool = False) -> str:
    keys = ", ".join(f'"{k}"' for k in PK[:n])
    return f"threshold = {threshold}\nvalidators = [{keys}]\n" + ("unsafe_quorum = true\n" if unsafe else "")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(text)
    path.chmod(0o600)
    return path


def error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_one_of_three_including_this_node_is_refused_by_check_config(tmp_path: Path) -> None:
    for unsafe in (False, True):
        path = write(tmp_path, config(flat(1, 3, unsafe=unsafe)))
        result = subprocess.run(
            [sys.executable, "-m", "scpd", "check-config", str(path)], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 2 and result.stdout == ""
        assert result.stderr == (
            f"scpd: error: {path}: quorum_set: no other validator can ever lead nomination: "
            "with 1 of 3 this node alone satisfies its quorum set; raise the threshold\n"
        )


def test_scpd_run_refuses_it_before_starting_anything(tmp_path: Path) -> None:
    """The restart of issue 11: a node on its data directory with 1 of 3 including itself."""
    path = write(tmp_path, config(flat(1, 3)))
    result = subprocess.run(
        [sys.executable, "-m", "scpd", "run", "--config", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"scpd: error: {path}: quorum_set: no other validator can ever lead nomination")
    assert len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "data").exists()


def test_a_watcher_may_follow_any_one_of_its_validators(tmp_path: Path) -> None:
    text = config(flat(1, 4, unsafe=True)).replace("[network]", "is_validator = false\n\n[network]")
    assert load_config(write(tmp_path, text)).quorum_set.threshold == 1


UNSAFE = [
    ("single-node", flat(1, 1), "quorum_set: 1 top-level entry tolerates no failure"),
    ("two-of-three", flat(2, 3), "quorum_set: 3 top-level entries tolerate no failure"),
    ("all-of-four", flat(4, 4), "quorum_set: 1 failure(s) ("),
    ("half-of-four", flat(2, 4), "quorum_set.threshold: 2 of 4 is below 3 (two thirds)"),
    (
        "inner-minority",
        flat(3, 3) + f'\n[[quorum_set.inner_sets]]\nthreshold = 1\nvalidators = ["{PK[5]}", "{PK[6]}"]\n',
        "quorum_set.inner_sets[0].threshold: threshold 1 of 2 is not a strict majority",
    ),
]


@pytest.mark.parametrize(("qset", "problem"), [u[1:] for u in UNSAFE], ids=[u[0] for u in UNSAFE])
def test_unsafe_quorum_sets_are_refused_unless_waived(tmp_path: Path, qset: str, problem: str) -> None:
    message = error(write(tmp_path, config(qset)))
    assert message.startswith(f"{tmp_path / 'node.toml'}: unsafe quorum set: "), message
    assert problem in message and message.endswith(WAIVER), message
    waived = qset.replace("\n", "\nunsafe_quorum = true\n", 1)
    assert load_config(write(tmp_path, config(waived))).node_id == ME.public_key


@pytest.mark.parametrize(("threshold", "n"), [(3, 4), (4, 5), (5, 7), (7, 10)])
def test_byzantine_fault_tolerant_flat_sets_need_no_waiver(tmp_path: Path, threshold: int, n: int) -> None:
    cfg = load_config(write(tmp_path, config(flat(threshold, n))))
    assert cfg.quorum_set.threshold == threshold and cfg.warnings == ()


def test_failures_that_halt_the_node_are_named(tmp_path: Path) -> None:
    orgs = "".join(
        f'\n[[quorum_set.inner_sets]]\nthreshold = 2\nvalidators = ["{PK[i]}", "{PK[i + 1]}"]\n' for i in (1, 3, 5)
    )
    # 3 of {me, 2 of 2, 2 of 2, 2 of 2}: f = 1; one failure (me, or one member of an org) removes
    # one entry, two are needed to halt us. With 4 of those 4 entries, one failure halts us.
    assert load_config(write(tmp_path, config(f'threshold = 3\nvalidators = ["{PK[0]}"]\n' + orgs))).warnings == ()
    message = error(write(tmp_path, config(f'threshold = 4\nvalidators = ["{PK[0]}"]\n' + orgs)))
    assert "quorum_set: 1 failure(s) (G" in message
    assert "halt this node, but its 4 top-level entries should withstand 1" in message


def test_published_example_seeds_are_refused_except_on_a_localnet(tmp_path: Path) -> None:
    for example in ("validator.toml", "watcher.toml"):
        text = (REPO / "config" / example).read_text()
        seed = text.split('seed = "')[1].split('"')[0]
        message = error(write(tmp_path, config(flat(3, 4), seed=seed)))
        assert message == (
            f"{tmp_path / 'node.toml'}: node.seed: this is the example seed published in config/{example}: "
            "anyone can sign as this node; generate your own with `scpd keygen --out node.seed`"
        )
        assert seed not in message
        localnet = config(flat(3, 4), seed=seed, passphrase="scpd localnet")
        assert str(load_config(write(tmp_path, localnet)).node_id) == str(Keypair.from_seed_strkey(seed).public_key)


@st.composite
def quorum_sets(draw: st.DrawFn) -> SCPQuorumSet:
    free = draw(st.permutations([Keypair(bytes([i + 1]) * 32).public_key for i in range(24)]))
    taken = iter(free)

    def level(d: int) -> SCPQuorumSet:
        validators = tuple(itertools.islice(taken, draw(st.integers(1 if d == 3 else 0, 3))))
        inner = tuple(level(d + 1) for _ in range(draw(st.integers(0, 2) if d < 3 else st.just(0))))
        if not validators and not inner:
            validators = (next(taken),)
        return SCPQuorumSet(draw(st.integers(1, len(validators) + len(inner))), validators, inner)

    return level(1)


def brute_force_blocking(qset: SCPQuorumSet) -> int:
    nodes = sorted(quorum.all_validators(qset))
    for size in range(1, len(nodes) + 1):
        if any(quorum.is_v_blocking(qset, set(c)) for c in itertools.combinations(nodes, size)):
            return size
    raise AssertionError("the whole set always blocks")


@settings(max_examples=200, deadline=None)
@given(qset=quorum_sets())
def test_closest_v_blocking_set_blocks_and_none_smaller_does(qset: SCPQuorumSet) -> None:
    blocking = quorum.closest_v_blocking(qset, quorum.all_validators(qset))
    assert blocking is not None and quorum.is_v_blocking(qset, blocking)
    assert len(blocking) == brute_force_blocking(qset)
    problems = quorum_safety_problems(qset)
    n = len(qset.validators) + len(qset.inner_sets)
    f = (n - 1) // 3
    safe = f >= 1 and len(blocking) > f and qset.threshold >= n - f
    assert (not problems) <= safe  # whatever passes tolerates f >= 1 failures


def test_label_names_the_halting_nodes() -> None:
    qset = SCPQuorumSet(4, tuple(k.public_key for k in KEYS[:4]))
    names: dict[NodeID, str] = {k.public_key: f"v{i}" for i, k in enumerate(KEYS)}
    [problem] = quorum_safety_problems(qset, names.__getitem__)
    assert problem.startswith("quorum_set: 1 failure(s) (v")
    assert problem.endswith(") halt this node, but its 4 top-level entries should withstand 1")

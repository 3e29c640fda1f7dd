"""``scpd simulate``: the JSON summary, option errors as one line, exit codes, replay."""

from __future__ import annotations

import json

import pytest

from scpd.cli.main import main
from scpd.sim.scenario import Scenario, random_faults
from scpd.sim.simulator import run


def simulate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, object], str]:
    code = main(["simulate", *args])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out else {}), err


def test_summary_reports_slots_agreement_latency_messages_and_counters(capsys: pytest.CaptureFixture[str]) -> None:
    code, summary, err = simulate(capsys, "--nodes", "5", "--slots", "2", "--seed", "3", "--latency", "const:0.05")
    assert code == 0 and err == ""
    assert summary["slots_externalized"] == {str(n): 2 for n in range(5)}
    assert summary["agreement"] is True and summary["validity"] is True and summary["completed"] is True
    per_slot = summary["per_slot"]
    assert isinstance(per_slot, list) and [s["slot"] for s in per_slot] == [1, 2]
    for s in per_slot:
        assert s["externalized_by"] == 5 and len(s["values"]) == 1
        assert 0.1 <= s["latency_p50"] <= s["latency_p99"] < 5.0  # at least two message hops of 0.05 s
        assert s["messages_sent"] >= s["envelopes_emitted"] > 0
        assert s["max_ballot_counter"] >= 1
    net = summary["network"]
    assert isinstance(net, dict) and net["sent"] > 0 and net["lost"] == 0


def test_faults_and_byzantine_options_are_applied(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--nodes", "7", "--slots", "2", "--seed", "4", "--loss", "0.2", "--loss-until", "3"]
    args += ["--duplicate", "0.1", "--reorder", "0.2", "--partition", "0:2:0,1,2/3,4,5,6", "--crash", "1:0.5:3"]
    args += ["--byzantine", "equivocate:1", "--byzantine", "silent:1", "--latency", "exp:0.01:0.05"]
    args += ["--fault", "disk:2:0.5:2.5", "--fault", "persist-crash:3:0.2:2", "--fault", "fetch:0.3:0.5:3"]
    code, summary, _ = simulate(capsys, *args)
    assert code == 0
    scenario = summary["scenario"]
    assert isinstance(scenario, dict)
    assert sorted(scenario["byzantine"].values()) == ["equivocate", "silent"]
    assert scenario["heal_time"] == 3.0
    assert "--fault disk:2:0.5:2.5 --fault persist-crash:3:0.2:2 --fault fetch:0.3:0.5:3" in scenario["replay"]
    net = summary["network"]
    assert isinstance(net, dict) and net["lost"] > 0 and net["cut_by_partition"] > 0 and net["duplicated"] > 0
    assert summary["agreement"] is True and summary["completed"] is True
    assert len(summary["slots_externalized"]) == 5  # type: ignore[arg-type]


def test_disagreement_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, summary, _ = simulate(
        capsys, "--nodes", "4", "--threshold", "2", "--slots", "1", "--partition", "0:100:0,1/2,3", "--time-limit", "50"
    )
    assert code == 1 and summary["agreement"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--loss", "2"], "--loss must be between 0 and 1"),
        (["--byzantine", "evil:1"], "kind must be one of"),
        (["--byzantine", "silent:9"], "has only 4 places"),
        (["--partition", "1:2"], "expected START:END"),
        (["--crash", "9:1"], "node 9 not in 0..3"),
        (["--latency", "gauss:1"], "expected const:S"),
        (["--topology", "tiered", "--nodes", "6", "--threshold", "2"], "only be given for the symmetric"),
        (["--slots", "0"], "must be at least 1"),
        (["--fault", "melt:1"], "kind must be one of persist-crash, disk, fetch"),
        (["--fault", "disk:9:0:1"], "disk fault: node 9 not in 0..3"),
        (["--fault", "persist-crash:5:1"], "crash: node 5 not in 0..3"),
    ],
)
def test_bad_options_are_one_line_errors(capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    code, summary, err = simulate(capsys, *args)
    assert code == 2 and summary == {}
    assert err.startswith("scpd: error: ") and message in err and err.count("\n") == 1


def test_replay_command_reproduces_a_generated_run(capsys: pytest.CaptureFixture[str]) -> None:
    scenario = random_faults(Scenario(topology="asymmetric", nodes=6, slots=2, seed=77, byzantine=(("replay", 1),)))
    expected = run(scenario).summary()
    command = scenario.replay_command().split()
    assert command[:2] == ["scpd", "simulate"] and "--random-faults" in command
    code, summary, _ = simulate(capsys, *command[2:])
    assert code == 0 and summary == json.loads(json.dumps(expected))


def test_per_link_latency_option_slows_that_link_only(capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--nodes", "4", "--slots", "1", "--seed", "8", "--latency", "const:0.01"]
    _, fast, _ = simulate(capsys, *base)
    # Every quorum (3 of 4) needs node 0 or node 1, whose outgoing links now take 2 s.
    slow_links = [arg for src in (0, 1) for dst in range(4) if dst != src for arg in ("--link", f"{src}:{dst}:const:2")]
    code, slow, _ = simulate(capsys, *base, *slow_links)
    assert code == 0 and slow["completed"] is True
    assert "--link 0:1:const:2" in slow["scenario"]["replay"]  # type: ignore[index]
    assert slow["latency_p99"] > 2.0 > fast["latency_p99"]  # type: ignore[operator]
    code, _, err = simulate(capsys, *base, "--link", "0:9:const:1")
    assert code == 2 and "link 0->9" in err


def test_command_line_of_any_scenario_parses_back_to_the_same_scenario() -> None:
    from dataclasses import replace

    from scpd.cli.main import build_parser
    from scpd.cli.simulate_cmd import scenario_from_args
    from scpd.sim.scenario import random_byzantine

    for seed in range(40):
        topology = ("symmetric", "tiered", "cycle", "asymmetric")[seed % 4]
        nodes = 9 if topology == "tiered" else 5 + seed % 3
        base = Scenario(
            topology=topology,
            nodes=nodes,
            slots=1 + seed % 3,
            seed=seed,
            byzantine=random_byzantine(seed, topology, nodes),
            slot_interval=0.125 * (seed % 2),
            time_limit=50.0 + seed / 7,
        )
        generated = random_faults(base)
        for scenario in (generated, replace(generated, random_faults=False)):
            args = build_parser().parse_args(["simulate", *scenario.cli_args()])
            assert scenario_from_args(args) == scenario, scenario.replay_command()

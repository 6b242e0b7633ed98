"""The tabular reference (``wmil tabular``): a lookup table that learns from the same verdicts,
memorises every training problem and guesses on held-out ones."""

from __future__ import annotations

import json

import pytest
import torch

from wmil.config import deep_merge
from wmil.evaluation.tabular import LookupTable, tabular_run
from wmil.seeding import split_seed
from wmil.tasks import TASKS, make_task


def test_the_table_answers_what_was_judged_right_and_never_repeats_a_wrong_answer():
    task = make_task("conditional", 16, 1)
    table = LookupTable(task)
    states = task.initial_states(task.problems(2)[:3])
    g = torch.Generator().manual_seed(0)
    table.learn(states[:2], torch.tensor([5, 6]), torch.tensor([0.0, 1.0]))  # 5 wrong on the first, 6 right on the second
    for _ in range(50):
        actions = table.act(states, g)
        assert actions[0] != 5 and actions[1] == 6
    assert set(table.act(states[2:].repeat(400, 1), g).tolist()) == set(range(16))  # unseen: a uniform guess
    # the code is the problem slots alone: the history slots of a later step share the entry
    later = states.clone()
    later[:, task.feedback_slot] = 2
    assert torch.equal(table.codes(later), table.codes(states))


@pytest.mark.parametrize("task", list(TASKS))
def test_it_memorises_its_training_problems_and_generalises_not_at_all(params, task):
    # ppo's settings (A = 16, T = 4) on every task of the registry, listed in the experiment or not
    overrides = deep_merge(params.experiments["ppo"].overrides, {"training": {"max_steps": 8192}}, "test")
    run = tabular_run(params.run_config(None, task, 12, overrides), params.evaluation)
    assert run["success_greedy"] == 1.0 and run["steps_to_0.9"] is not None and run["steps_to_0.9"] <= 8192
    full = make_task(task, 16, 4)
    held = full.held_out(full.problems(2), split_seed(12))
    assert run["problems_learned"] >= int((~held).sum())  # every training problem, and continuations
    if held.any():  # chance on four answers is 16^-4: a guess almost never gets a whole episode right
        assert run["held_out_success_greedy"] <= 0.01
    else:
        assert run["held_out_success_greedy"] is None


def test_the_cli_writes_the_reference_for_every_task_and_seed_of_the_method(tmp_path):
    import yaml
    from conftest import PARAMS_PATH

    from wmil.cli import main

    raw = yaml.safe_load(PARAMS_PATH.read_text())
    raw["seeds"] = [10, 11]
    raw["experiments"]["ppo"]["overrides"]["training"]["max_steps"] = 2048
    raw["experiments"]["ppo"]["task_overrides"] = {}
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(raw))
    out = tmp_path / "tabular.json"
    assert main(["tabular", "--params", str(params), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["experiment"] == "ppo" and set(report["tasks"]) == {"pattern_echo", "sequence_next", "conditional"}
    assert [r["seed"] for r in report["tasks"]["conditional"]["runs"]] == [10, 11]
    assert main(["tabular", "--params", str(params), "--out", str(tmp_path / "again.json")]) == 0
    assert (tmp_path / "again.json").read_bytes() == out.read_bytes()  # deterministic

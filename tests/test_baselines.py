"""Baselines (random, RL-only, KL distillation), reward noise and the held-out evaluation."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from conftest import PARAMS_PATH, assert_same_run, train_interrupted
from torch import nn

from wmil.config import flatten, load_params
from wmil.evaluation.evaluate import Evaluator
from wmil.evaluation.held_out import evaluate_run
from wmil.models.baby import BabyModel
from wmil.parents import DeterministicParent
from wmil.tasks.registry import TASKS
from wmil.tasks.rules import make_task
from wmil.training.distill import kl_to_parent
from wmil.training.trainer import Trainer

PARAMS = load_params(PARAMS_PATH)



@pytest.mark.parametrize("baseline, ablated", [
    ("random", {"algorithm.name"}),
    ("rl_only", {"model.world_model", "rewards.pred_weight"}),
    ("kl_distill", {"algorithm.distill_coef"}),
])
def test_baselines_differ_from_the_method_only_in_their_ablated_part(baseline, ablated):
    """... and in the settings a recorded search tuned for them (params.yaml ``tuning``), each one of
    the values it searched."""
    method = PARAMS.evaluation.method
    assert baseline in PARAMS.evaluation.baselines
    assert PARAMS.experiments[baseline].tasks == PARAMS.experiments[method].tasks
    grid = PARAMS.tuning[baseline].grid if baseline in PARAMS.tuning else {}
    for task in PARAMS.experiments[method].tasks:
        for seed in PARAMS.seeds:
            a = flatten(PARAMS.run_config(method, task, seed).to_dict())
            b = flatten(PARAMS.run_config(baseline, task, seed).to_dict())
            changed = {k for k in a if a[k] != b[k]}
            assert ablated | {"experiment"} <= changed <= ablated | set(grid) | {"experiment"}
            assert all(b[k] in grid[k] for k in changed & set(grid))


@pytest.mark.parametrize("control, base, changed, tasks", [
    ("answer_head", "rl_only", {"model.world_model", "model.world_model_head"}, None),
    ("detached_head", "ppo", {"model.world_model_detached"}, None),
    ("ppo_fresh", "ppo", {"env.next_problem"}, ["sequence_next"]),
    ("rl_only_fresh", "rl_only", {"env.next_problem"}, ["sequence_next"]),
    ("ppo_matched", "ppo", {"training.max_steps", "algorithm.lr_schedule"}, None),
    ("curriculum", "ppo_matched", {"curriculum.enabled"}, None),
])
def test_each_control_differs_from_its_base_only_in_what_it_controls(control, base, changed, tasks):
    """The world-model controls and the curriculum's arms: one change each, on the base's tasks
    (or the one named), so a difference in the results is that change's."""
    assert list(PARAMS.experiments[control].tasks) == (tasks or list(PARAMS.experiments[base].tasks))
    for task in PARAMS.experiments[control].tasks:
        a = flatten(PARAMS.run_config(base, task, 10).to_dict())
        b = flatten(PARAMS.run_config(control, task, 10).to_dict())
        assert {k for k in a if a[k] != b[k]} == changed | {"experiment"}, task


@pytest.mark.parametrize("sweep, base, extra", [
    ("quality_mvp", "mvp", set()), ("quality_t1", "t1_tasks", set()),
    ("corrected_mvp", "mvp", {"rewards.noise_correction"}),
])
def test_each_parent_quality_point_differs_from_its_base_only_in_the_error_rates(sweep, base, extra):
    names = PARAMS.sweeps[sweep]
    assert len(names) >= 3 and set(names) <= set(PARAMS.expand(PARAMS.evaluation.noise))
    for name in names:
        exp = PARAMS.experiments[name]
        assert exp.sweep == sweep and exp.tasks == PARAMS.experiments[base].tasks
        for task in exp.tasks:
            a = flatten(PARAMS.run_config(base, task).to_dict())
            b = flatten(PARAMS.run_config(name, task).to_dict())
            assert {k for k in a if a[k] != b[k]} <= {"experiment", "parent.false_positive_rate",
                                                      "parent.false_negative_rate"} | extra
            assert (b["parent.false_positive_rate"], b["parent.false_negative_rate"]) == (exp.point["fpr"], exp.point["fnr"])


def test_kl_to_parent_is_cross_entropy_for_a_one_hot_parent_and_zero_when_equal():
    logits = torch.randn(5, 8)
    log_probs = torch.log_softmax(logits, -1)
    target = torch.tensor([0, 3, 7, 1, 1])
    one_hot = nn.functional.one_hot(target, 8).float()
    torch.testing.assert_close(kl_to_parent(one_hot, log_probs), nn.functional.nll_loss(log_probs, target))
    assert float(kl_to_parent(log_probs.exp(), log_probs)) == pytest.approx(0.0, abs=1e-6)


class OraclePolicy(nn.Module):
    """The task's rule as a policy: all probability on the correct action; no world model."""

    world_model = None

    def __init__(self, task):
        super().__init__()
        self.task = task

    def forward(self, states):
        logits = 20.0 * nn.functional.one_hot(self.task.answer(states), self.task.num_actions).float()
        return None, logits, None


@pytest.mark.parametrize("task_name", TASKS)
def test_evaluator_gives_one_for_the_oracle_and_one_over_a_for_a_uniform_policy(task_name, params):
    task = make_task(task_name, 8, 1)
    evaluator = Evaluator(DeterministicParent(task), 1, 20000, seed=5)
    for level in range(3):
        assert evaluator.evaluate(OraclePolicy(task), level)["success"] == 1.0
    uniform = BabyModel(task, params.run_config("mvp").model)
    nn.init.zeros_(uniform.action_head.fc.weight)
    nn.init.zeros_(uniform.action_head.fc.bias)
    for greedy in (True, False):  # greedy breaks the all-way tie uniformly: it acts at random too
        result = evaluator.evaluate(uniform, 2, greedy=greedy)
        assert result["success"] == pytest.approx(1 / 8, abs=0.01)
        assert result["entropy"] == pytest.approx(float(torch.log(torch.tensor(8.0))), abs=1e-5)


@pytest.mark.integration
def test_random_baseline_never_learns_and_stays_at_chance(tmp_path):
    config = PARAMS.run_config("random", "pattern_echo", 0, {"training": {"max_steps": 4096, "log_every": 1024}})
    trainer = Trainer(config, tmp_path)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    metrics = trainer.train(progress=False)
    after = trainer.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    report = evaluate_run(tmp_path, PARAMS.evaluation)
    A = config.env.num_actions
    assert report["by_level"]["2"]["sampled"]["step_success"] == pytest.approx(1 / A, abs=0.02)
    assert report["success_sampled"] <= 0.01 and metrics["final_rolling_success"] <= 0.01  # (1/A)^T


@pytest.mark.integration
def test_kl_distill_moves_the_policy_towards_the_parent(tmp_path):
    steps = {"training": {"max_steps": 20480, "log_every": 2048}}
    distill = Trainer(PARAMS.run_config("kl_distill", "conditional", 0, steps), tmp_path / "kl").train(progress=False)
    method = Trainer(PARAMS.run_config("ppo", "conditional", 0, steps), tmp_path / "ppo").train(progress=False)
    kl = pd.read_csv(tmp_path / "kl/curve.csv")["distill_loss"]
    assert kl.iloc[-1] < 0.5 * kl.iloc[0]  # nats: KL(parent || policy) falls
    assert (pd.read_csv(tmp_path / "ppo/curve.csv")["distill_loss"] == 0).all()
    assert distill["final_rolling_success"] > method["final_rolling_success"]


@pytest.mark.integration
@pytest.mark.parametrize("experiment", ["quality_mvp-fpr0.3-fnr0.3", "kl_distill"])
def test_noisy_and_distilling_runs_resume_bit_identically(tmp_path, experiment):
    task = PARAMS.experiments[experiment].tasks[0]
    full = {"training": {"max_steps": 4096 if experiment == "kl_distill" else 2000,
                         "save_every": 1024 if experiment == "kl_distill" else 500}}
    config = PARAMS.run_config(experiment, task, 0, full)
    Trainer(config, tmp_path / "straight").train(progress=False)
    train_interrupted(config, tmp_path / "resumed")  # the parent's error stream is part of the checkpoint
    Trainer(config, tmp_path / "resumed").train(resume="must", progress=False)
    assert_same_run(tmp_path / "straight", tmp_path / "resumed")


@pytest.mark.integration
def test_noisy_parent_counts_its_flips_and_success_stays_the_rules(tmp_path):
    Trainer(PARAMS.run_config("quality_mvp-fpr0.4-fnr0.4", "pattern_echo", 0, {"training": {"max_steps": 2000}}),
            tmp_path).train(progress=False)
    assert json.loads((tmp_path / "parent_stats.json").read_text())["reward_flips"] == pytest.approx(0.4 * 2000, abs=80)
    curve = pd.read_csv(tmp_path / "curve.csv")
    # the verdicts the baby saw are 40% flipped; success is the rules': E[goal] = 0.4 + 0.2 * success
    expected = 0.4 + 0.2 * curve["success_rate"]
    assert (curve["reward_goal"] - expected).abs().mean() < 0.05


@pytest.mark.integration
def test_evaluate_writes_held_out_eval_json_deterministically(tmp_path):
    from wmil.cli import main

    Trainer(PARAMS.run_config("mvp", "pattern_echo", 1, {"training": {"max_steps": 3000}}), tmp_path).train(progress=False)
    assert main(["evaluate", "--params", str(PARAMS_PATH), "--run-dir", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["experiment"] == "mvp" and report["seed"] == 1 and report["level"] == 2
    assert set(report["by_level"]) == {"0", "1", "2"}
    assert report["success_greedy"] == report["by_level"]["2"]["greedy"]["success"] > 0.9
    assert 0 <= report["success_sampled"] <= 1 and report["world_model_mse"] > 0
    # PatternEcho holds nothing out (an unseen target is an untrained output)
    assert report["held_out_success_greedy"] is None and report["held_out_problems"] == []
    assert report["training_problems"] == 8 and report["by_level"]["2"]["held_out_greedy"] is None
    assert evaluate_run(tmp_path, PARAMS.evaluation) == report
    # the pipeline's train jobs evaluate each run in the same process: the same eval.json
    again = tmp_path / "again"
    assert main(["train", "--params", str(PARAMS_PATH), "--experiment", "mvp", "--seed", "1", "--run-dir", str(again),
                 "--set", "training.max_steps=3000", "--no-progress", "--evaluate"]) == 0
    assert json.loads((again / "eval.json").read_text()) == report


@pytest.mark.integration
def test_evaluation_reports_training_and_held_out_problems_apart(tmp_path):
    """A Conditional run trained on its 12 training problems: eval.json names the 4 it held out (its
    seed's split) and scores them apart, at every level."""
    from wmil.seeding import split_seed

    seed = 13
    Trainer(PARAMS.run_config("ppo", "conditional", seed, {"training": {"max_steps": 1024}}), tmp_path).train(progress=False)
    report = evaluate_run(tmp_path, PARAMS.evaluation)
    task = make_task("conditional", 16, 4)
    held = task.problems(2)[task.held_out(task.problems(2), split_seed(seed))]
    assert report["held_out_problems"] == held.tolist() and report["training_problems"] == 12
    for level in ("0", "1", "2"):
        entry = report["by_level"][level]
        assert set(entry) == {"greedy", "sampled", "held_out_greedy", "held_out_sampled"}
        assert 0.0 <= entry["held_out_greedy"]["success"] <= 1.0
    assert report["held_out_success_greedy"] == report["by_level"]["2"]["held_out_greedy"]["success"]
    assert report["success_greedy"] == report["by_level"]["2"]["greedy"]["success"]


def test_evaluate_without_a_finished_run_is_a_clear_error(tmp_path, capsys):
    from wmil.cli import main

    assert main(["evaluate", "--params", str(PARAMS_PATH), "--run-dir", str(tmp_path)]) == 2
    assert "model.pt: no finished run to evaluate" in capsys.readouterr().err

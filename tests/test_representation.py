"""Representation analysis: the state grid, probes, clusters, t-SNE and the end-to-end report."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from wmil.evaluation.representation import (
    analyze_model,
    analyze_raw,
    analyze_untrained,
    cluster_scores,
    probe_accuracy,
    state_grid,
    tsne_map,
)
from wmil.models.baby import BabyModel
from wmil.tasks.registry import TASKS as REGISTRY
from wmil.tasks.rules import NUM_LEVELS, make_task
from wmil.training.algorithms import ALGORITHMS

TASKS = tuple(REGISTRY)
REPORT_KEYS = {"source", "task", "experiment", "run_seed", "world_model", "n_states", "probes", "clusters", "tsne"}


@pytest.mark.parametrize("name", TASKS)
@pytest.mark.parametrize("episode_length", [1, 4])
def test_state_grid_is_deterministic_deduplicated_and_labelled_by_the_rules(name, episode_length):
    task = make_task(name, 8, episode_length)
    states, labels = state_grid(task)
    again, labels_again = state_grid(task)
    assert torch.equal(states, again)
    assert all(np.array_equal(labels[k], labels_again[k]) for k in labels)
    assert len(torch.unique(states, dim=0)) == len(states)
    assert set(labels) == {"level", "answer", "feedback", *(s.name for s in task.problem_slots)}
    assert np.array_equal(labels["answer"], task.answer(states).numpy())
    assert np.array_equal(labels["feedback"], states[:, task.feedback_slot].numpy())
    for i, slot in enumerate(task.problem_slots):
        assert np.array_equal(labels[slot.name], states[:, i].numpy())
    assert set(labels["feedback"].tolist()) == {0, 1, 2}  # fresh, after a wrong and a right answer
    rows = {tuple(s) for s in states.tolist()}
    for level in range(NUM_LEVELS):  # every problem of every level is there, fresh
        assert {tuple(s) for s in task.initial_states(task.problems(level)).tolist()} <= rows


def test_state_grid_level_is_the_easiest_level_holding_the_state():
    conditional = make_task("conditional", 8)  # its rule slot is the level: no state is shared
    _, labels = state_grid(conditional)
    assert np.array_equal(labels["level"], labels["rule"])
    echo = make_task("pattern_echo", 16)  # level 0 asks for targets 0..4, level 1 up to 8, level 2 all
    _, labels = state_grid(echo)
    assert np.array_equal(labels["level"], np.digitize(labels["target"], [5, 9]))


# ---- probes --------------------------------------------------------------------------------

def one_slot_labels(states: torch.Tensor, labels: dict[str, np.ndarray]) -> list[str]:
    """The labels that are one slot's value under other names (a one-to-one map of a column of
    ``states``): one-hot blocks of the raw state, so a linear probe must recover them on held-out
    states. Every slot's own label, and e.g. PatternEcho's ``answer`` (its target) and
    Conditional's ``level`` (its rule); not an ``answer`` of several slots, nor a ``level`` that
    groups a slot's values (a value seen in the test part alone is then not decodable)."""
    def renames(column: np.ndarray, y: np.ndarray) -> bool:
        return len(set(zip(column.tolist(), y.tolist()))) == len(set(column.tolist())) == len(set(y.tolist()))

    return [name for name, y in labels.items() if any(renames(column, y) for column in states.T.numpy())]


@pytest.mark.parametrize("name", TASKS)
def test_probes_recover_slot_attributes_from_the_raw_one_hot_states(name):
    task = make_task(name, 16)
    states, labels = state_grid(task)
    X = task.one_hot(states).numpy()
    linear = one_slot_labels(states, labels)
    assert {"feedback", *(s.name for s in task.problem_slots)} <= set(linear)
    for attribute in linear:
        result = probe_accuracy(X, labels[attribute], seed=0)
        assert result["accuracy"] > 0.95, (attribute, result)
        assert 0.0 < result["chance"] < 0.95, (attribute, result)


def test_probes_stay_at_chance_on_shuffled_labels():
    """A probe fit to shuffled labels predicts independently of the test labels, so its expected
    accuracy is at most the majority rate (chance). Its held-out accuracy is a mean of ``n_test``
    hits, with standard deviation at most ``sqrt(c (1 - c) / n_test)``; averaged over 5 shuffles,
    3 such deviations bound it (a false alarm about once in 700 draws, and the draws are fixed)."""
    task = make_task("conditional", 8)
    states, labels = state_grid(task)
    X = task.one_hot(states).numpy()
    rng = np.random.default_rng(0)
    shuffles = 5
    for attribute in ("shape", "answer", "feedback"):
        results = [probe_accuracy(X, rng.permutation(labels[attribute]), seed=s) for s in range(shuffles)]
        accuracy = np.mean([r["accuracy"] for r in results])
        chance = np.mean([r["chance"] for r in results])
        n_test = int(np.ceil(0.3 * len(states)))
        tolerance = 3 * np.sqrt(chance * (1 - chance) / (shuffles * n_test))
        assert accuracy <= chance + tolerance, (attribute, accuracy, chance, tolerance)
        assert probe_accuracy(X, labels[attribute], seed=0)["accuracy"] > chance + tolerance  # the test can fail


def test_probe_and_clusters_skip_labels_without_information():
    X = np.random.default_rng(0).normal(size=(20, 4))
    for y in (np.zeros(20, dtype=int), np.arange(20)):
        assert probe_accuracy(X, y, seed=0) is None
        assert cluster_scores(X, y, seed=0) is None
    with pytest.raises(ValueError, match="test_fraction"):
        probe_accuracy(X, np.arange(20) % 2, seed=0, test_fraction=1.0)
    with pytest.raises(ValueError, match="X, y"):
        probe_accuracy(X, np.arange(19) % 2, seed=0)


# ---- clusters and maps -----------------------------------------------------------------------

def test_cluster_scores_on_separated_blobs_and_on_random_labels():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 30)
    centres = rng.normal(size=(4, 8)) * 10
    blobs = centres[labels] + rng.normal(size=(120, 8)) * 0.1
    separated = cluster_scores(blobs, labels, seed=0)
    assert separated["ari"] > 0.99 and separated["silhouette"] > 0.9
    noise = cluster_scores(rng.normal(size=(120, 8)), rng.integers(0, 4, 120), seed=0)
    assert abs(noise["ari"]) < 0.05 and abs(noise["silhouette"]) < 0.1
    assert cluster_scores(blobs, labels, seed=0) == separated


def test_tsne_map_shape_and_determinism():
    X = np.random.default_rng(0).normal(size=(40, 8))
    xy = tsne_map(X, seed=0)
    assert xy.shape == (40, 2) and np.isfinite(xy).all()
    assert np.array_equal(tsne_map(X, seed=0), xy)
    assert tsne_map(X[:5], seed=0).shape == (5, 2)  # perplexity adapts to tiny grids
    with pytest.raises(ValueError, match="X"):
        tsne_map(X[:3], seed=0)


# ---- end to end ------------------------------------------------------------------------------

def check_report(report: dict, n_states: int) -> None:
    assert set(report) == REPORT_KEYS
    assert report["n_states"] == n_states
    assert report["probes"] and report["clusters"]
    for result in report["probes"].values():
        assert 0.0 <= result["chance"] <= 1.0 and 0.0 <= result["accuracy"] <= 1.0
    for result in report["clusters"].values():
        assert -1.0 <= result["ari"] <= 1.0 and -1.0 <= result["silhouette"] <= 1.0
    tsne = report["tsne"]
    assert len(tsne["x"]) == len(tsne["y"]) == n_states
    assert all(len(v) == n_states for v in tsne["labels"].values())
    assert json.loads(json.dumps(report)) == report


@pytest.mark.parametrize("experiment, task_name", [("mvp", "pattern_echo"), ("ppo", "conditional")])
def test_analyze_model_reads_a_saved_model_end_to_end(params, tmp_path, experiment, task_name):
    config = params.run_config(experiment, task_name, seed=3)
    task = make_task(config.env.task, config.env.num_actions, config.env.episode_length)
    torch.manual_seed(0)  # as the trainer builds it, value head (PPO) included
    model = BabyModel(task, config.model, value_head=ALGORITHMS[config.algorithm.name].needs_value)
    path = tmp_path / "model.pt"
    torch.save({"config": config.to_dict(), "model": model.state_dict()}, path)
    report = analyze_model(path, seed=0)
    n_states = len(state_grid(task)[0])
    check_report(report, n_states)
    assert (report["source"], report["task"], report["experiment"], report["run_seed"]) == (
        "trained", task_name, experiment, 3)
    assert report["world_model"] == config.model.world_model
    assert set(report["tsne"]["labels"]) == set(state_grid(task)[1])


def test_references_raw_and_untrained(params):
    config = params.run_config("mvp", "pattern_echo")
    task = make_task("pattern_echo", config.env.num_actions)
    n_states = len(state_grid(task)[0])
    raw = analyze_raw(task, seed=0)
    check_report(raw, n_states)
    assert raw["source"] == "raw" and raw["probes"]["target"]["accuracy"] == 1.0
    before = torch.random.get_rng_state()
    untrained = analyze_untrained(task, config.model, seed=0)
    assert torch.equal(torch.random.get_rng_state(), before)  # the caller's generator is untouched
    check_report(untrained, n_states)
    assert untrained["source"] == "untrained"
    assert analyze_untrained(task, config.model, seed=0) == untrained

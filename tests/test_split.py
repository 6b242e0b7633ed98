"""The held-out split: which problems a run never trains on (``Task.held_out``), the parent that
draws only its part (``Split``), and that no training episode ever reaches a held-out problem."""

from __future__ import annotations

import itertools

import pytest
import torch

from wmil.parents import DeterministicParent, Split, make_parent
from wmil.seeding import split_seed
from wmil.tasks import TASKS, make_task
from wmil.tasks.rules import NUM_LEVELS

SEEDS = [split_seed(s) for s in range(10, 20)]  # the splits of the reported runs


@pytest.mark.parametrize("seed", SEEDS)
def test_conditional_holds_out_a_latin_square_whose_answers_training_determines(seed):
    """One shape per (colour, size) group and every shape once; the same cells at every level; each
    held-out cell's shape is trained in the other groups and its group trained with the other shapes."""
    task = make_task("conditional", 16, 4)
    cells = None
    for level in range(NUM_LEVELS):
        table = task.problems(level)
        held = task.held_out(table, seed)
        assert int(held.sum()) == 4
        level_cells = {tuple(p[1:]) for p in table[held].tolist()}
        assert cells is None or level_cells == cells  # held out wherever it occurs
        cells = level_cells
        trained = {tuple(p[1:]) for p in table[~held].tolist()}
        for shape, color, size in level_cells:
            assert sum((shape, c, z) in trained for c, z in itertools.product((0, 1), (0, 1))) == 3
            assert sum((s, color, size) in trained for s in range(4)) == 3
    assert sorted(shape for shape, _, _ in cells) == [0, 1, 2, 3]
    assert sorted(2 * c + z for _, c, z in cells) == [0, 1, 2, 3]


def test_the_split_is_drawn_per_seed():
    task = make_task("conditional", 16, 4)
    splits = {tuple(task.held_out(task.problems(2), seed).tolist()) for seed in SEEDS}
    assert len(splits) >= 5  # ten seeds, 24 Latin squares of this kind: many different splits
    steps = {make_task("sequence_next", 16, 4).held_out_step(seed) for seed in SEEDS}
    assert len(steps) >= 3


@pytest.mark.parametrize("num_actions", [8, 16, 32])
@pytest.mark.parametrize("seed", SEEDS)
def test_sequence_next_holds_out_one_step_never_one_with_its_opposite_trained(num_actions, seed):
    task = make_task("sequence_next", num_actions, 4)
    d = task.held_out_step(seed)
    top = (num_actions - 1) // 3
    assert 2 <= abs(d) <= max(2, top - 1)
    for level in range(NUM_LEVELS):
        table = task.problems(level)
        held = task.held_out(table, seed)
        assert bool((task.step_of(table[held]) == d % num_actions).all())
        if level < 2:
            assert not held.any()  # levels 0 and 1 count up by one: nothing to hold out
        else:
            assert held.any() and (~held).any()
            assert bool((task.step_of(table[~held]) == -d % num_actions).any())  # the opposite step is trained


def test_pattern_echo_holds_nothing_out():
    task = make_task("pattern_echo", 16, 4)
    assert not any(task.held_out(task.problems(level), seed).any() for level in range(NUM_LEVELS) for seed in SEEDS)


@pytest.mark.parametrize("task_name", list(TASKS))
@pytest.mark.parametrize("num_actions", [8, 16])
def test_no_training_episode_ever_reaches_a_held_out_problem(task_name, num_actions):
    """From every training problem of every level, whatever the baby answers at each of T = 8 steps
    (every action, random sequences), the parent's transitions stay on training problems."""
    T = 8
    task = make_task(task_name, num_actions, T)
    parent = DeterministicParent(task)
    g = torch.Generator().manual_seed(0)
    for seed, level in itertools.product(SEEDS[:4], range(NUM_LEVELS)):
        table = task.problems(level)
        starts = table[~task.held_out(table, seed)].repeat(num_actions * 4, 1)
        states = task.initial_states(starts)
        for _ in range(T):
            actions = torch.randint(num_actions, (len(states),), generator=g)
            _, states = parent.step(states, actions)
            assert not task.held_out(states, seed).any(), (seed, level)


@pytest.mark.parametrize("task_name", ["sequence_next", "conditional"])
def test_a_split_parent_draws_only_its_part(task_name):
    task = make_task(task_name, 16, 4)
    seed = SEEDS[0]
    for part, expect_held in (("training", False), ("held_out", True)):
        parent = DeterministicParent(task, Split(seed, part))
        drawn = parent.generate(2, 4000, torch.Generator().manual_seed(1))
        held = task.held_out(drawn, seed)
        assert bool((held == expect_held).all())
        distinct = {tuple(p) for p in drawn[:, : task.num_problem_slots].tolist()}
        assert len(distinct) == len(parent.drawn_table(2))  # every problem of the part is drawn
    mixed = DeterministicParent(task, Split(seed, "training")).generate(torch.tensor([0, 1, 2] * 50), 150, torch.Generator())
    assert not task.held_out(mixed, seed).any()  # a curriculum's mixed levels too


def test_a_part_with_no_problem_is_a_clear_error():
    task = make_task("sequence_next", 16, 4)
    parent = DeterministicParent(task, Split(SEEDS[0], "held_out"))
    with pytest.raises(ValueError, match="sequence_next level 0: the split .* leaves no held_out problem"):
        parent.generate(0, 4, torch.Generator())


def test_a_training_run_draws_its_training_split(params):
    """The trainer's parent holds the run's split: every state it collects is a training problem."""
    from wmil.training.trainer import Trainer

    config = params.run_config("ppo", "conditional", 12, {"training": {"max_steps": 1024}})
    with Trainer(config, "unused") as trainer:
        assert trainer.parent.split == Split(split_seed(12), "training")
        for _ in range(4):
            trainer.collector.collect(trainer.level)
            assert not trainer.task.held_out(trainer.buffer.states.flatten(0, 1), split_seed(12)).any()
    noisy = make_parent(params.run_config("quality_mvp-fpr0.3-fnr0.3", "pattern_echo").parent, task=make_task(
        "conditional", 16, 4), generator=torch.Generator(), split=Split(SEEDS[0], "training"))
    assert not make_task("conditional", 16, 4).held_out(noisy.generate(2, 500, torch.Generator()), SEEDS[0]).any()

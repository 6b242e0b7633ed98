"""Tasks and their registry, the deterministic parent, the batched ``VectorEnv``, the plan's
``SymbolicEnv`` and ``State``, and the Gymnasium registration."""

from __future__ import annotations

import dataclasses
import itertools
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import wmil.envs.gym as wmil_gym
from wmil.config import TASK_NAMES as CONFIG_TASK_NAMES
from wmil.config import json_schema, parse_params
from wmil.envs import SymbolicEnv, VectorEnv
from wmil.envs.env import RewardVector
from wmil.parents import DeterministicParent, RewardNoise, make_parent
from wmil.tasks import TASKS, PatternEchoTask, State, Task, make_task
from wmil.tasks.rules import FEEDBACK_NONE, FEEDBACK_RIGHT, FEEDBACK_WRONG, NUM_LEVELS, Slot

PARAMS_PATH = Path(__file__).resolve().parents[1] / "params.yaml"

TASK_NAMES = sorted(TASKS)
LEVELS = tuple(range(NUM_LEVELS))
ACTION_COUNTS = (8, 16)
N_SAMPLES = 20_000
RANDOM_TOLERANCE = 0.02

ALL_COMBOS = list(itertools.product(TASK_NAMES, LEVELS, ACTION_COUNTS))
COMBO_IDS = [f"{t}-L{lvl}-A{a}" for t, lvl, a in ALL_COMBOS]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def parent_for(task_name: str, num_actions: int, T: int = 1) -> DeterministicParent:
    return DeterministicParent(make_task(task_name, num_actions, T))


def state_row(task, problem: list[int]) -> torch.Tensor:
    """A full state row (no action yet) for a problem given as its problem slots."""
    return task.initial_states(torch.tensor([problem]))


# --------------------------------------------------------------------------------------------
# Every task x level x A: answers, random policy, oracle, generated states
# --------------------------------------------------------------------------------------------


def test_levels_and_tasks_registered():
    """Three levels; each registry entry loads a :class:`Task` subclass of its name (whatever
    tasks are registered: the tests of every task read the registry)."""
    assert LEVELS == (0, 1, 2)
    loaded = {name: (issubclass(cls, Task), cls.name) for name, cls in TASKS.items()}
    assert TASK_NAMES and loaded == {name: (True, name) for name in TASK_NAMES}


@pytest.mark.parametrize("task_name,level,num_actions", ALL_COMBOS, ids=COMBO_IDS)
def test_every_answer_is_an_action(task_name, level, num_actions):
    task = make_task(task_name, num_actions)
    table = task.problems(level)
    assert table.dtype == torch.long
    assert table.ndim == 2 and table.shape[1] == task.num_problem_slots
    assert len(table) > 0
    answers = task.answer(task.initial_states(table))
    assert answers.dtype == torch.long
    assert answers.shape == (len(table),)
    assert int(answers.min()) >= 0
    assert int(answers.max()) <= num_actions - 1


@pytest.mark.parametrize("task_name,level,num_actions", ALL_COMBOS, ids=COMBO_IDS)
def test_random_policy_success_is_one_over_a(task_name, level, num_actions):
    parent = parent_for(task_name, num_actions)
    states = parent.generate(level, N_SAMPLES, gen(level * 100 + num_actions))
    actions = torch.randint(num_actions, (N_SAMPLES,), generator=gen(12345))
    reward = parent.reward(states, actions)
    assert reward.shape == (N_SAMPLES,)
    assert set(reward.unique().tolist()) <= {0.0, 1.0}
    success = float(reward.mean())
    assert abs(success - 1.0 / num_actions) < RANDOM_TOLERANCE, success


@pytest.mark.parametrize("task_name,level,num_actions", ALL_COMBOS, ids=COMBO_IDS)
def test_oracle_policy_always_succeeds(task_name, level, num_actions):
    parent = parent_for(task_name, num_actions)
    states = parent.generate(level, N_SAMPLES, gen(3))
    dist = parent.action_distribution(states)
    assert dist.shape == (N_SAMPLES, num_actions)
    assert dist.dtype == torch.float32
    torch.testing.assert_close(dist.sum(-1), torch.ones(N_SAMPLES))
    oracle = dist.argmax(-1)
    reward = parent.reward(states, oracle)
    assert float(reward.mean()) == 1.0
    assert bool((reward == 1.0).all())


@pytest.mark.parametrize("task_name,level,num_actions", ALL_COMBOS, ids=COMBO_IDS)
def test_generated_states_shape_dtype_and_range(task_name, level, num_actions):
    parent = parent_for(task_name, num_actions)
    task = parent.task
    n = 5000
    states = parent.generate(level, n, gen(1))
    assert states.dtype == torch.long
    assert states.shape == (n, task.num_slots)
    assert task.num_slots == task.num_problem_slots + 2
    # no action yet, no feedback yet
    assert bool((states[:, task.last_action_slot] == num_actions).all())
    assert bool((states[:, task.feedback_slot] == FEEDBACK_NONE).all())
    # every value inside its slot's cardinality
    assert bool((states >= 0).all())
    assert bool((states < task.cardinalities).all())
    assert task.cardinalities.tolist()[-2:] == [num_actions + 1, 3]
    # every generated problem is a problem of that level, and sampling covers the whole table
    table = task.problems(level)
    rows = {tuple(r) for r in states[:, : task.num_problem_slots].tolist()}
    assert rows <= {tuple(r) for r in table.tolist()}
    if len(table) <= 200:
        assert len(rows) == len(table)


@pytest.mark.parametrize("task_name", TASK_NAMES)
def test_generation_is_seeded(task_name):
    parent = parent_for(task_name, 16)
    a = parent.generate(2, 256, gen(5))
    b = parent.generate(2, 256, gen(5))
    c = parent.generate(2, 256, gen(6))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("task_name", TASK_NAMES)
@pytest.mark.parametrize("bad_level", [-1, 3])
def test_bad_level_raises(task_name, bad_level):
    with pytest.raises(ValueError, match="level"):
        make_task(task_name, 16).problems(bad_level)


@pytest.mark.parametrize("task_name", TASK_NAMES)
def test_too_few_actions_raises(task_name):
    with pytest.raises(ValueError, match="at least 8"):
        make_task(task_name, 7)


def test_unknown_task_raises():
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        make_task("nope", 16)


@pytest.mark.parametrize("task_name", TASK_NAMES)
def test_one_hot_encoding(task_name):
    task = make_task(task_name, 16)
    states = DeterministicParent(task).generate(2, 32, gen(0))
    one_hot = task.one_hot(states)
    assert one_hot.shape == (32, task.one_hot_dim)
    assert task.one_hot_dim == int(task.cardinalities.sum())
    # exactly one 1 per slot, at offset + value
    torch.testing.assert_close(one_hot.sum(-1), torch.full((32,), float(task.num_slots)))
    idx = states + task.slot_offsets
    assert bool((one_hot.gather(1, idx) == 1.0).all())


# --------------------------------------------------------------------------------------------
# Hand-computed rules
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("num_actions", ACTION_COUNTS)
@pytest.mark.parametrize("level", LEVELS)
def test_pattern_echo_answer_is_target(num_actions, level):
    task = make_task("pattern_echo", num_actions)
    states = task.initial_states(task.problems(level))
    assert torch.equal(task.answer(states), states[:, 0])
    for target in (0, 3, num_actions - 1):
        assert int(task.answer(state_row(task, [target]))[0]) == target


@pytest.mark.parametrize(
    "num_actions,level,expected",
    [
        (8, 0, list(range(5))),
        (16, 0, list(range(5))),
        (8, 1, list(range(8))),
        (16, 1, list(range(9))),
        (8, 2, list(range(8))),
        (16, 2, list(range(16))),
    ],
)
def test_pattern_echo_level_targets(num_actions, level, expected):
    task = make_task("pattern_echo", num_actions)
    assert task.problems(level)[:, 0].tolist() == expected


@pytest.mark.parametrize(
    "num_actions,seq,expected",
    [
        (16, [2, 3, None], 4),  # level 0 form: two terms, blank third
        (8, [2, 3, None], 4),
        (16, [0, 1, None], 2),
        (16, [1, 2, 3], 4),  # level 1 form
        (16, [1, 3, 5], 7),  # level 2: step 2
        (16, [9, 6, 3], 0),  # level 2: descending
        (16, [15, 11, 7], 3),
        (8, [0, 2, 4], 6),
        (8, [7, 5, 3], 1),
    ],
)
def test_sequence_next_hand_examples(num_actions, seq, expected):
    task = make_task("sequence_next", num_actions)
    problem = [num_actions if x is None else x for x in seq]
    assert int(task.answer(state_row(task, problem))[0]) == expected
    # answer() also works on bare problem slots
    assert int(task.answer(torch.tensor([problem]))[0]) == expected


@pytest.mark.parametrize(
    "num_actions,level,problem",
    [
        (16, 0, [2, 3, 16]),
        (8, 0, [2, 3, 8]),
        (16, 1, [2, 3, 4]),
        (16, 2, [1, 3, 5]),
        (16, 2, [9, 6, 3]),
        (8, 2, [7, 5, 3]),
    ],
)
def test_sequence_next_problem_in_level_table(num_actions, level, problem):
    table = make_task("sequence_next", num_actions).problems(level).tolist()
    assert problem in table


@pytest.mark.parametrize("num_actions", ACTION_COUNTS)
def test_sequence_next_level_structure(num_actions):
    task = make_task("sequence_next", num_actions)
    A = num_actions
    lvl0, lvl1, lvl2 = (task.problems(level) for level in LEVELS)
    # level 0: two terms counting up by one, third slot blank
    assert bool((lvl0[:, 2] == A).all())
    assert bool((lvl0[:, 1] - lvl0[:, 0] == 1).all())
    # level 1: three terms counting up by one, no blanks
    assert bool((lvl1 < A).all())
    assert bool((lvl1[:, 1] - lvl1[:, 0] == 1).all() and (lvl1[:, 2] - lvl1[:, 1] == 1).all())
    # level 2: arithmetic progressions with steps of either sign, nonzero
    assert bool((lvl2 < A).all())
    steps = lvl2[:, 1] - lvl2[:, 0]
    assert torch.equal(steps, lvl2[:, 2] - lvl2[:, 1])
    assert bool((steps != 0).all())
    assert bool((steps < 0).any()), "level 2 must contain descending sequences"
    assert bool((steps > 1).any()), "level 2 must contain steps other than +1"
    # level 2 contains everything of level 1
    assert {tuple(r) for r in lvl1.tolist()} <= {tuple(r) for r in lvl2.tolist()}


@pytest.mark.parametrize("shape", range(4))
@pytest.mark.parametrize("color", (0, 1))
@pytest.mark.parametrize("size", (0, 1))
def test_conditional_rule_0_is_shape(shape, color, size):
    task = make_task("conditional", 16)
    assert int(task.answer(state_row(task, [0, shape, color, size]))[0]) == shape


@pytest.mark.parametrize("shape", range(4))
@pytest.mark.parametrize("color", (0, 1))
@pytest.mark.parametrize("size", (0, 1))
def test_conditional_rule_1_red_adds_four(shape, color, size):
    task = make_task("conditional", 16)
    expected = shape + 4 if color == 1 else shape
    assert int(task.answer(state_row(task, [1, shape, color, size]))[0]) == expected


@pytest.mark.parametrize(
    "shape,color,size,expected",
    [
        (0, 1, 1, 7),  # red + large -> 7 - shape
        (1, 1, 1, 6),
        (2, 1, 1, 5),
        (3, 1, 1, 4),
        (0, 0, 1, 0),  # blue + large -> shape
        (3, 0, 1, 3),
        (0, 1, 0, 4),  # red + small -> shape + 4
        (3, 1, 0, 7),
        (1, 0, 0, 1),  # blue + small -> shape
        (2, 0, 0, 2),
    ],
)
def test_conditional_rule_2(shape, color, size, expected):
    task = make_task("conditional", 8)
    assert int(task.answer(state_row(task, [2, shape, color, size]))[0]) == expected


@pytest.mark.parametrize("level", LEVELS)
def test_conditional_rule_equals_level(level):
    table = make_task("conditional", 8).problems(level)
    assert len(table) == 16
    assert bool((table[:, 0] == level).all())
    assert {tuple(r) for r in table[:, 1:].tolist()} == set(
        itertools.product(range(4), range(2), range(2))
    )


# --------------------------------------------------------------------------------------------
# Deterministic parent
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("task_name", TASK_NAMES)
@pytest.mark.parametrize("num_actions", ACTION_COUNTS)
@pytest.mark.parametrize("T", [1, 3])
def test_parent_transition_and_reward(task_name, num_actions, T):
    parent = parent_for(task_name, num_actions, T)
    task = parent.task
    P = task.num_problem_slots
    n = 2000
    states = parent.generate(2, n, gen(0))
    oracle = task.answer(states)
    # half the batch right, half random (mostly wrong)
    random_actions = torch.randint(num_actions, (n,), generator=gen(1))
    actions = torch.where(torch.arange(n) % 2 == 0, oracle, random_actions)
    before = states.clone()

    nxt = parent.transition(states, actions)
    reward = parent.reward(states, actions)
    right = actions == oracle

    assert torch.equal(states, before), "transition must not modify its input"
    assert nxt.dtype == torch.long and nxt.shape == states.shape
    assert torch.equal(nxt[:, :P], task.next_problem(states, actions, oracle))
    if type(task).next_problem is Task.next_problem:
        assert torch.equal(nxt[:, :P], states[:, :P]), "the problem stays on the table"
    if T > 1:
        assert torch.equal(nxt[:, task.step_slot], states[:, task.step_slot] + 1), "the step slot counts"
    assert torch.equal(nxt[:, task.last_action_slot], actions)
    expected_feedback = torch.where(right, FEEDBACK_RIGHT, FEEDBACK_WRONG)
    feedback = nxt[:, task.feedback_slot]
    assert torch.equal(feedback, expected_feedback)
    assert bool((feedback == FEEDBACK_RIGHT).any()) and bool((feedback == FEEDBACK_WRONG).any())
    assert bool((nxt < task.cardinalities).all()) and bool((nxt >= 0).all())
    assert reward.dtype == torch.float32
    assert torch.equal(reward, right.float())

    step_reward, step_next = parent.step(states, actions)
    assert torch.equal(step_reward, reward)
    assert torch.equal(step_next, nxt)


def test_parent_feedback_hand_example():
    parent = parent_for("pattern_echo", 8)
    states = torch.tensor([[3, 8, 0], [5, 8, 0]])
    reward, nxt = parent.step(states, torch.tensor([3, 4]))
    assert reward.tolist() == [1.0, 0.0]
    assert nxt.tolist() == [[3, 3, 2], [5, 4, 1]]


def test_parent_step_slot_hand_example():
    parent = parent_for("conditional", 8, T=3)
    states = torch.tensor([[2, 1, 1, 1, 0, 8, 0], [2, 1, 1, 1, 1, 6, 2]])  # answer 6 for both
    reward, nxt = parent.step(states, torch.tensor([6, 5]))
    assert reward.tolist() == [1.0, 0.0]
    assert nxt.tolist() == [[2, 1, 1, 1, 1, 6, 2], [2, 1, 1, 1, 2, 5, 1]]


@pytest.mark.parametrize(
    "num_actions,problem,action,expected",
    [
        (16, [2, 3, 16], 4, [3, 4, 16]),  # two-term form stays two-term
        (16, [2, 3, 16], 9, [3, 4, 16]),  # a wrong answer is corrected by the parent
        (16, [1, 3, 5], 7, [3, 5, 7]),
        (16, [1, 3, 5], 6, [3, 5, 7]),
        (8, [7, 5, 3], 1, [5, 3, 1]),
    ],
)
def test_sequence_next_next_problem(num_actions, problem, action, expected):
    parent = parent_for("sequence_next", num_actions, T=2)
    state = parent.task.initial_states(torch.tensor([problem]))
    nxt = parent.transition(state, torch.tensor([action]))
    assert nxt[0, :3].tolist() == expected
    assert nxt[0, 3:].tolist() == [1, action, FEEDBACK_RIGHT if action == parent.task.answer(state)[0] else FEEDBACK_WRONG]


@pytest.mark.parametrize(
    "num_actions,seq,expected",
    [(16, [14, 15, None], 0), (16, [3, 5, 6], 7), (16, [13, 14, 15], 0), (8, [1, 0, None], 7), (8, [2, 1, 0], 7)],
)
def test_sequence_next_answer_wraps_modulo_a(num_actions, seq, expected):
    task = make_task("sequence_next", num_actions)
    problem = [num_actions if x is None else x for x in seq]
    assert int(task.answer(torch.tensor([problem]))[0]) == expected


@pytest.mark.parametrize("task_name", TASK_NAMES)
@pytest.mark.parametrize("T", [1, 2, 5])
def test_step_slot_only_for_multi_step_episodes(task_name, T):
    task = make_task(task_name, 16, T)
    names = [s.name for s in task.slots]
    assert task.episode_length == T
    assert names[-2:] == ["last_action", "feedback"]
    if T == 1:
        assert not task.has_step_slot
        assert "step" not in names
        assert task.num_slots == task.num_problem_slots + 2
    else:
        assert task.has_step_slot
        assert names[-3] == "step" and task.slots[-3].cardinality == T + 1
        assert task.num_slots == task.num_problem_slots + 3
    states = DeterministicParent(task).generate(1, 50, gen(0))
    assert states.shape == (50, task.num_slots)
    assert states[:, task.num_problem_slots:].tolist() == [[0] * (T > 1) + [16, FEEDBACK_NONE]] * 50


@pytest.mark.parametrize("task_name", TASK_NAMES)
@pytest.mark.parametrize("T", [1, 3])
def test_named_history_slots(task_name, T):
    """``step_slot``, ``last_action_slot`` and ``feedback_slot`` name the history columns."""
    task = make_task(task_name, 16, T)
    n = task.num_slots
    assert (task.last_action_slot, task.feedback_slot) == (n - 2, n - 1)
    if T > 1:
        assert task.step_slot == n - 3 == task.num_problem_slots
    else:
        with pytest.raises(ValueError, match="no step slot"):
            _ = task.step_slot
    assert [task.slot_index(s.name) for s in task.slots] == list(range(n))
    with pytest.raises(ValueError, match="no slot 'nope'"):
        task.slot_index("nope")


@pytest.mark.parametrize("bad", [0, -1])
def test_bad_episode_length_raises(bad):
    with pytest.raises(ValueError, match="episode_length"):
        make_task("pattern_echo", 8, bad)


def test_make_parent_builds_the_configured_parent_and_wraps_reward_noise(params):
    task = make_task("pattern_echo", 8)
    config = params.run_config("mvp", "pattern_echo").parent
    assert isinstance(make_parent(config, task), DeterministicParent)
    for rates in ({"false_positive_rate": 0.3}, {"false_negative_rate": 0.3}):
        noisy = make_parent(dataclasses.replace(config, **rates), task, torch.Generator().manual_seed(0))
        assert isinstance(noisy, RewardNoise) and isinstance(noisy.parent, DeterministicParent)
        with pytest.raises(ValueError, match="needs a generator"):
            make_parent(dataclasses.replace(config, **rates), task)
    with pytest.raises(ValueError, match="unknown parent 'oracle'"):
        make_parent(dataclasses.replace(config, name="oracle"), task)


@pytest.mark.parametrize("fpr, fnr", [(0.0, 0.0), (0.25, 0.0), (0.0, 0.4), (0.3, 0.2), (1.0, 1.0)])
def test_reward_noise_errs_at_its_rates_on_verdict_and_feedback_but_success_stays_true(fpr, fnr):
    task = make_task("pattern_echo", 8)
    rules = DeterministicParent(task)
    noisy = RewardNoise(rules, fpr, fnr, torch.Generator().manual_seed(1))
    env = VectorEnv(noisy, 40000, 1, torch.Generator().manual_seed(2))
    states = env.reset(2)
    actions = torch.where(torch.arange(40000) % 2 == 0, task.answer(states),  # half right, half (mostly) wrong
                          torch.randint(8, (40000,), generator=torch.Generator().manual_seed(3)))
    true_reward, true_next = rules.step(states, actions)
    step = env.step(actions)
    right = true_reward > 0.5
    assert abs(float(step.goal[~right].mean()) - fpr) < 0.015  # wrong answers called right: FPR
    assert abs(float(1 - step.goal[right].mean()) - fnr) < 0.015  # right answers called wrong: FNR
    assert noisy.flips == int((step.goal != true_reward).sum())
    fb = task.feedback_slot
    assert torch.equal(step.next_states[:, fb], torch.where(step.goal > 0.5, FEEDBACK_RIGHT, FEEDBACK_WRONG))
    others = [i for i in range(task.num_slots) if i != fb]
    assert torch.equal(step.next_states[:, others], true_next[:, others])  # only the verdict is noisy
    assert torch.equal(step.success, actions == task.answer(states))  # success is the rule's


# --------------------------------------------------------------------------------------------
# VectorEnv
# --------------------------------------------------------------------------------------------


def make_vector_env(task_name="pattern_echo", num_actions=8, n=64, T=1, seed=0) -> VectorEnv:
    return VectorEnv(parent_for(task_name, num_actions, T), n, T, gen(seed))


def test_vector_env_step_before_reset_raises():
    env = make_vector_env()
    with pytest.raises(RuntimeError, match="reset"):
        env.step(torch.zeros(64, dtype=torch.long))


@pytest.mark.parametrize("task_name", TASK_NAMES)
@pytest.mark.parametrize("T", [1, 3])
def test_vector_env_done_only_at_time_limit(task_name, T):
    env = make_vector_env(task_name, 16, n=32, T=T)
    expected = [False] * (T - 1) + [True]
    for _episode in range(2):
        states = env.reset(level=2)
        assert states.shape == (32, env.task.num_slots)
        dones = []
        for _ in range(T):
            # the oracle action: success every step must not end the episode early
            result = env.step(env.task.answer(env.states))
            assert result.done.dtype == torch.bool and result.done.shape == (32,)
            assert bool(result.success.all())
            assert bool((result.done == result.done[0]).all())
            dones.append(bool(result.done[0]))
        assert dones == expected
        # the time limit is over: no further step until reset
        with pytest.raises(RuntimeError, match="reset"):
            env.step(env.task.answer(env.states))


@pytest.mark.parametrize("task_name", TASK_NAMES)
def test_vector_env_success_is_separate_from_done(task_name):
    env = make_vector_env(task_name, 16, n=64, T=3)
    env.reset(level=2)
    right = env.task.answer(env.states)
    r1 = env.step(right)  # right but not done
    assert r1.success.dtype == torch.bool and r1.success.shape == (64,)
    assert bool(r1.success.all()) and not bool(r1.done.any())
    assert r1.goal.dtype == torch.float32 and torch.equal(r1.goal, torch.ones(64))
    wrong = (env.task.answer(env.states) + 1) % 16
    r2 = env.step(wrong)  # wrong, not done
    assert not bool(r2.success.any()) and not bool(r2.done.any())
    assert torch.equal(r2.goal, torch.zeros(64))
    r3 = env.step((env.task.answer(env.states) + 1) % 16)  # wrong, done
    assert bool(r3.done.all()) and not bool(r3.success.any())


@pytest.mark.parametrize("task_name", TASK_NAMES)
@pytest.mark.parametrize("T", [1, 3])
def test_vector_env_next_states_carry_consequence(task_name, T):
    env = make_vector_env(task_name, 16, n=128, T=T, seed=4)
    task = env.task
    env.reset(level=2)
    for t in range(T):
        before = env.states.clone()
        oracle = task.answer(before)
        actions = torch.where(torch.arange(128) % 3 == 0, oracle, (oracle + 1) % 16)
        result = env.step(actions)
        assert result.next_states.dtype == torch.long
        assert torch.equal(result.next_states[:, : task.num_problem_slots], task.next_problem(before, actions, oracle))
        assert torch.equal(result.next_states[:, task.last_action_slot], actions)
        assert torch.equal(
            result.next_states[:, task.feedback_slot], torch.where(actions == oracle, FEEDBACK_RIGHT, FEEDBACK_WRONG)
        )
        if T > 1:
            assert bool((result.next_states[:, task.step_slot] == t + 1).all())
        assert torch.equal(result.success, actions == oracle)
        # the env continues from the consequence, also at the end of the episode
        assert torch.equal(env.states, result.next_states)
    assert bool(result.done.all())
    consequence = result.next_states.clone()
    # the next episodes start fresh
    fresh = env.reset()
    assert env.t == 0
    assert bool((fresh[:, task.last_action_slot] == 16).all())
    assert bool((fresh[:, task.feedback_slot] == FEEDBACK_NONE).all())
    if T > 1:
        assert bool((fresh[:, task.step_slot] == 0).all())
    # ... while the result still holds the consequence (the world-model target)
    assert torch.equal(result.next_states, consequence)
    assert bool((consequence[:, task.feedback_slot] != FEEDBACK_NONE).all())


def test_vector_env_reset_keeps_its_level():
    env = make_vector_env("pattern_echo", 16, n=500, T=1)
    env.reset(level=0)
    assert env.level == 0
    for _ in range(3):
        env.step(torch.zeros(500, dtype=torch.long))
        assert int(env.reset()[:, 0].max()) <= 4
    assert env.level == 0
    env.reset(level=2)
    assert int(env.states[:, 0].max()) > 4
    env.step(torch.zeros(500, dtype=torch.long))
    assert int(env.reset()[:, 0].max()) > 4


@pytest.mark.parametrize("task_name", TASK_NAMES)
def test_vector_env_same_seed_same_states(task_name):
    a = make_vector_env(task_name, 16, n=64, T=2, seed=11)
    b = make_vector_env(task_name, 16, n=64, T=2, seed=11)
    c = make_vector_env(task_name, 16, n=64, T=2, seed=12)
    assert torch.equal(a.reset(2), b.reset(2))
    assert not torch.equal(a.states, c.reset(2))
    actions = torch.randint(16, (64,), generator=gen(0))
    for _ in range(5):
        ra, rb = a.step(actions), b.step(actions)
        assert torch.equal(ra.next_states, rb.next_states)
        assert torch.equal(ra.goal, rb.goal)
        assert torch.equal(a.states, b.states)
        if bool(ra.done[0]):
            assert torch.equal(a.reset(), b.reset())


def _roll(env: VectorEnv, episodes: int = 2) -> list[torch.Tensor]:
    """``episodes`` episodes from a reset each, recording everything observable."""
    out = []
    for e in range(episodes):
        out.append(env.reset().clone())
        done = False
        k = 0
        while not done:
            r = env.step(torch.full((env.num_envs,), (e + k) % env.task.num_actions))
            out += [r.next_states.clone(), r.goal.clone(), r.done.clone()]
            done = bool(r.done[0])
            k += 1
    return out


@pytest.mark.parametrize("task_name", TASK_NAMES)
@pytest.mark.parametrize("T", [1, 3])
def test_vector_env_state_dict_round_trip(task_name, T):
    env = make_vector_env(task_name, 16, n=64, T=T, seed=21)
    env.reset(level=1)
    for _ in range(T):
        env.step(torch.randint(16, (64,), generator=gen(0)))
    snapshot = env.state_dict()

    first = _roll(env)
    env.load_state_dict(snapshot)
    assert env.level == 1
    second = _roll(env)
    assert len(first) == len(second)
    assert all(torch.equal(x, y) for x, y in zip(first, second))

    # a fresh env with another seed continues identically from the snapshot
    other = make_vector_env(task_name, 16, n=64, T=T, seed=999)
    other.load_state_dict(snapshot)
    assert other.level == 1
    third = _roll(other)
    assert all(torch.equal(x, y) for x, y in zip(first, third))


@pytest.mark.parametrize("T", [2, 3])
def test_vector_env_state_dict_mid_episode(T):
    env = make_vector_env("sequence_next", 16, n=32, T=T, seed=2)
    env.reset(level=2)
    env.step(torch.zeros(32, dtype=torch.long))
    snapshot = env.state_dict()
    assert snapshot["t"] == 1

    def finish() -> tuple[list[bool], torch.Tensor, torch.Tensor]:
        dones = [bool(env.step(torch.ones(32, dtype=torch.long)).done[0]) for _ in range(T - 1)]
        return dones, env.states.clone(), env.reset().clone()

    a = finish()
    env.load_state_dict(snapshot)
    b = finish()
    assert a[0] == b[0] == [False] * (T - 2) + [True]  # the episode ends after T steps in total
    assert torch.equal(a[1], b[1]) and torch.equal(a[2], b[2])


def test_vector_env_state_dict_is_a_snapshot():
    env = make_vector_env("pattern_echo", 16, n=16, T=1, seed=0)
    env.reset(2)
    snapshot = env.state_dict()
    saved_states = snapshot["states"].clone()
    saved_gen = snapshot["generator"].clone()
    for _ in range(3):
        env.step(torch.zeros(16, dtype=torch.long))
        env.reset()
    assert torch.equal(snapshot["states"], saved_states)
    assert torch.equal(snapshot["generator"], saved_gen)


# --------------------------------------------------------------------------------------------
# SymbolicEnv (the plan's single-episode API)
# --------------------------------------------------------------------------------------------


def symbolic(task_name="pattern_echo", num_actions=16, max_steps=1, seed=0) -> SymbolicEnv:
    return SymbolicEnv(parent_for(task_name, num_actions, max_steps), max_steps=max_steps, seed=seed)


def correct_action(state: State) -> int:
    return int(state.task.answer(state.to_tensor().unsqueeze(0))[0])


@pytest.mark.parametrize("task_name", TASK_NAMES)
@pytest.mark.parametrize("difficulty", LEVELS)
def test_symbolic_reset_returns_state(task_name, difficulty):
    env = symbolic(task_name)
    state = env.reset(difficulty)
    assert isinstance(state, State)
    assert list(state.attributes) == [s.name for s in env.task.slots]
    assert state.attributes["last_action"] == 16
    assert state.attributes["feedback"] == FEEDBACK_NONE
    problem = state.to_tensor()[: env.task.num_problem_slots].tolist()
    assert problem in env.task.problems(difficulty).tolist()


@pytest.mark.parametrize("task_name", TASK_NAMES)
def test_symbolic_step_api(task_name):
    env = symbolic(task_name, max_steps=1)
    state = env.reset(2)
    action = correct_action(state)
    out = env.step(action)
    assert isinstance(out, tuple) and len(out) == 4
    next_state, reward, done, info = out
    assert isinstance(next_state, State)
    assert isinstance(reward, RewardVector)
    assert reward.goal == 1.0
    assert done is True
    assert info["success"] is True
    assert next_state.attributes["last_action"] == action
    assert next_state.attributes["feedback"] == FEEDBACK_RIGHT
    P = env.task.num_problem_slots
    row = state.to_tensor().unsqueeze(0)
    expected_problem = env.task.next_problem(row, torch.tensor([action]), env.task.answer(row))[0]
    assert next_state.to_tensor()[:P].tolist() == expected_problem.tolist()


@pytest.mark.parametrize("task_name", TASK_NAMES)
def test_symbolic_wrong_action(task_name):
    env = symbolic(task_name, max_steps=1)
    state = env.reset(2)
    wrong = (correct_action(state) + 1) % 16
    next_state, reward, done, info = env.step(wrong)
    assert reward.goal == 0.0
    assert info["success"] is False
    assert done is True
    assert next_state.attributes["feedback"] == FEEDBACK_WRONG


@pytest.mark.parametrize("task_name", TASK_NAMES)
def test_symbolic_done_only_on_time_limit(task_name):
    env = symbolic(task_name, max_steps=3)
    state = env.reset(1)
    assert state.attributes["step"] == 0
    dones, successes = [], []
    for k in range(3):
        state, reward, done, info = env.step(correct_action(state))
        dones.append(done)
        successes.append(info["success"])
        assert reward.goal == 1.0
        assert state.attributes["step"] == k + 1
    assert dones == [False, False, True]
    assert successes == [True, True, True]
    assert info["step"] == 3
    assert info["episode_success"] is True
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    # reset makes it usable again
    state = env.reset(1)
    assert env.step(correct_action(state))[2] is False


@pytest.mark.parametrize("task_name", TASK_NAMES)
def test_symbolic_episode_success_needs_every_answer(task_name):
    """As everywhere else in the project, an episode succeeds when every answer was right: one
    wrong answer first spoils it, however right the rest."""
    env = symbolic(task_name, max_steps=3)
    state = env.reset(1)
    state, _, _, info = env.step((correct_action(state) + 1) % 16)
    assert (info["success"], info["episode_success"]) == (False, False)
    for _ in range(2):
        state, _, done, info = env.step(correct_action(state))
        assert (info["success"], info["episode_success"]) == (True, False)
    assert done


def test_symbolic_max_steps_must_match_the_task():
    with pytest.raises(ValueError, match="max_steps"):
        SymbolicEnv(parent_for("pattern_echo", 16, 1), max_steps=3)


def test_symbolic_step_before_reset_raises():
    with pytest.raises(RuntimeError, match="reset"):
        symbolic().step(0)


@pytest.mark.parametrize("bad", [-1, 16, 17, 1000])
def test_symbolic_invalid_action_raises(bad):
    env = symbolic(num_actions=16)
    env.reset(0)
    with pytest.raises(ValueError, match=r"0\.\.15"):
        env.step(bad)
    # the failed call did not consume a step
    assert env.step(0)[2] is True


def test_symbolic_seeded():
    a = [symbolic("sequence_next", seed=3).reset(2).to_tensor().tolist() for _ in range(2)]
    assert a[0] == a[1]


# --------------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("task_name", TASK_NAMES)
@pytest.mark.parametrize("num_actions", ACTION_COUNTS)
@pytest.mark.parametrize("T", [1, 3])
def test_state_tensor_round_trip(task_name, num_actions, T):
    parent = parent_for(task_name, num_actions, T)
    states = parent.generate(2, 20, gen(0))
    nxt = parent.transition(states, torch.arange(20) % num_actions)
    for row in torch.cat([states, nxt]):
        state = State.from_tensor(parent.task, row)
        assert list(state.attributes) == [s.name for s in parent.task.slots]
        assert all(isinstance(v, int) for v in state.attributes.values())
        back = state.to_tensor()
        assert back.dtype == torch.long
        assert torch.equal(back, row)


@pytest.mark.parametrize("task_name", TASK_NAMES)
def test_state_from_tensor_wrong_length(task_name):
    task = make_task(task_name, 8)
    with pytest.raises(ValueError, match=f"{task.num_slots + 1} slots"):
        State.from_tensor(task, torch.zeros(task.num_slots + 1, dtype=torch.long))


@pytest.mark.parametrize("task_name", TASK_NAMES)
@pytest.mark.parametrize("T", [1, 3])
def test_state_prompt(task_name, T):
    parent = parent_for(task_name, 16, T)
    row = parent.generate(2, 1, gen(0))
    fresh = State.from_tensor(parent.task, row[0])
    prompt = fresh.to_prompt()
    assert isinstance(prompt, str)
    for slot in parent.task.slots:
        assert f"{slot.name}=" in prompt
    assert "last_action=none" in prompt
    card = parent.task.rule_card  # the state's words are explained by the task's rule card
    assert "numbers 0 to 15" in card and all(s.name in card for s in parent.task.slots if s.name != "step" or T > 1)
    acted = State.from_tensor(parent.task, parent.transition(row, torch.tensor([3]))[0]).to_prompt()
    assert "last_action=3" in acted
    assert "last_action=none" not in acted
    if T > 1:
        assert "step=0 of 3" in prompt and "step=1 of 3" in acted


def test_state_prompt_blank_and_values():
    task = make_task("sequence_next", 16)
    prompt = State.from_tensor(task, torch.tensor([2, 3, 16, 16, 0])).to_prompt()
    assert "seq_0=2" in prompt and "seq_1=3" in prompt and "seq_2=blank" in prompt
    echo = make_task("pattern_echo", 16)
    assert "target=7" in State.from_tensor(echo, torch.tensor([7, 16, 0])).to_prompt()


# --------------------------------------------------------------------------------------------
# Gymnasium
# --------------------------------------------------------------------------------------------

GYM_IDS = wmil_gym.env_ids()


@pytest.fixture(scope="module")
def gymnasium():
    import gymnasium as gym

    import wmil.envs.gym  # noqa: F401  (registers the ids)

    return gym


def test_gym_ids_registered(gymnasium):
    assert list(GYM_IDS.values()) == list(TASKS)
    assert wmil_gym.env_id(PatternEchoTask) == "wmil/PatternEcho-v0"  # the ids published before the registry
    assert {"wmil/PatternEcho-v0", "wmil/SequenceNext-v0", "wmil/Conditional-v0"} <= set(GYM_IDS)
    for id_ in GYM_IDS:
        assert id_ in gymnasium.registry


def test_gym_ids_as_the_readme_says_in_a_fresh_interpreter():
    """Naming the module in the id makes Gymnasium import it, and importing it registers every id
    of the registry (each makes its task)."""
    code = ("import json, gymnasium\n"
            "named = gymnasium.make('wmil.envs.gym:wmil/PatternEcho-v0').unwrapped.task.name\n"
            "import wmil.envs.gym\n"
            "made = {i: gymnasium.make(i).unwrapped.task.name for i in gymnasium.registry if i.startswith('wmil/')}\n"
            "print(json.dumps({'named': named, 'made': made}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"named": "pattern_echo", "made": GYM_IDS}


@pytest.mark.parametrize("env_id", GYM_IDS)
@pytest.mark.parametrize("episode_length", [1, 3])
def test_gym_check_env(gymnasium, env_id, episode_length):
    from gymnasium.utils.env_checker import check_env

    env = gymnasium.make(env_id, episode_length=episode_length)
    assert env.unwrapped.task.name == GYM_IDS[env_id]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any checker warning (bounds, dtypes, determinism) fails the test
        check_env(env.unwrapped)


@pytest.mark.parametrize("env_id", GYM_IDS)
@pytest.mark.parametrize("seed", [0, 1, 123])
def test_gym_reset_seeded(gymnasium, env_id, seed):
    env = gymnasium.make(env_id).unwrapped
    obs1, info1 = env.reset(seed=seed)
    obs2, info2 = env.reset(seed=seed)
    assert isinstance(obs1, np.ndarray) and obs1.dtype == np.int64
    assert obs1.shape == (env.task.num_slots,)
    assert env.observation_space.contains(obs1)
    np.testing.assert_array_equal(obs1, obs2)
    assert info1 == info2 == {"level": 2}


@pytest.mark.parametrize("env_id", GYM_IDS)
def test_gym_reset_seeds_differ(gymnasium, env_id):
    env = gymnasium.make(env_id).unwrapped
    observations = {tuple(env.reset(seed=s)[0].tolist()) for s in range(20)}
    assert len(observations) > 1


@pytest.mark.parametrize("env_id", GYM_IDS)
@pytest.mark.parametrize("right", [True, False])
def test_gym_episode_of_length_one(gymnasium, env_id, right):
    env = gymnasium.make(env_id).unwrapped
    obs, _ = env.reset(seed=7)
    state = torch.as_tensor(obs).unsqueeze(0)
    answer = int(env.task.answer(state)[0])
    action = answer if right else (answer + 1) % env.action_space.n
    obs2, reward, terminated, truncated, info = env.step(action)
    assert terminated is True
    assert truncated is False
    assert isinstance(reward, float)
    assert reward == (1.0 if right else 0.0)
    assert info["success"] is right
    assert env.observation_space.contains(obs2)
    assert obs2[env.task.last_action_slot] == action
    assert obs2[env.task.feedback_slot] == (FEEDBACK_RIGHT if right else FEEDBACK_WRONG)
    expected_problem = env.task.next_problem(state, torch.tensor([action]), env.task.answer(state))[0].numpy()
    np.testing.assert_array_equal(obs2[: env.task.num_problem_slots], expected_problem)


@pytest.mark.parametrize("env_id", GYM_IDS)
def test_gym_longer_episode(gymnasium, env_id):
    env = gymnasium.make(env_id, episode_length=3).unwrapped
    obs, _ = env.reset(seed=0)
    assert obs[env.task.step_slot] == 0
    flags = []
    for k in range(3):
        answer = int(env.task.answer(torch.as_tensor(obs).unsqueeze(0))[0])
        obs, reward, terminated, truncated, info = env.step(answer)
        assert reward == 1.0 and info["success"] is True and truncated is False
        assert obs[env.task.step_slot] == k + 1
        flags.append(terminated)
    assert flags == [False, False, True]


@pytest.mark.parametrize("bad", [-1, 16, 100])
def test_gym_invalid_action(gymnasium, bad):
    env = gymnasium.make("wmil/PatternEcho-v0").unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError):
        env.step(bad)


def test_gym_reset_level_option(gymnasium):
    env = gymnasium.make("wmil/PatternEcho-v0").unwrapped
    targets = set()
    for s in range(40):
        obs, info = env.reset(seed=s, options={"level": 0})
        assert info == {"level": 0}
        targets.add(int(obs[0]))
    assert targets <= set(range(5))


# --------------------------------------------------------------------------------------------
# The task registry: a new task is one class plus one entry in TASKS
# --------------------------------------------------------------------------------------------


class ZzThrowawayProbeTask(Task):
    """This module's own task, registered for one test only (a name no user would give a task, so
    that removing it never removes theirs): two numbers, the answer is their sum modulo ``A``."""

    name = "zz_throwaway_probe"

    @property
    def problem_slots(self) -> tuple[Slot, ...]:
        return (Slot("a", self.num_actions), Slot("b", self.num_actions))

    def rule(self) -> str:
        return f"The correct action is a plus b, modulo {self.num_actions}."

    def level_card(self, level: int) -> str:
        return f"a and b are below {(2, 4, self.num_actions)[level]}."

    def _enumerate(self, level: int) -> torch.Tensor:
        top = (2, 4, self.num_actions)[level]
        return torch.cartesian_prod(torch.arange(top), torch.arange(top))

    def answer(self, states: torch.Tensor) -> torch.Tensor:
        return (states[:, 0] + states[:, 1]) % self.num_actions


PROBE = ZzThrowawayProbeTask.name
PROBE_GYM_ID = "wmil/ZzThrowawayProbe-v0"


@pytest.fixture
def probe_task(monkeypatch, gymnasium):
    """``ZzThrowawayProbeTask`` in the registry for one test; gone again afterwards (also from Gymnasium)."""
    monkeypatch.setitem(TASKS, PROBE, ZzThrowawayProbeTask)
    yield ZzThrowawayProbeTask
    gymnasium.registry.pop(PROBE_GYM_ID, None)


def test_a_registered_task_reaches_config_gym_parents_and_envs(probe_task, gymnasium):
    from gymnasium.utils.env_checker import check_env

    # config: the registry is the list of allowed tasks, in experiments, env.task and the schema
    raw = yaml.safe_load(PARAMS_PATH.read_text())
    raw["experiments"]["probe_mvp"] = {"extends": "mvp", "tasks": [PROBE, "pattern_echo"]}
    params = parse_params(raw)
    config = params.run_config("probe_mvp", PROBE, seed=1)
    assert config.env.task == PROBE and params.run_config(None, PROBE).env.task == PROBE
    assert PROBE in CONFIG_TASK_NAMES
    schema = json_schema()["properties"]
    assert PROBE in schema["defaults"]["properties"]["env"]["properties"]["task"]["enum"]
    assert PROBE in schema["experiments"]["additionalProperties"]["properties"]["tasks"]["items"]["enum"]

    # make_task and the parent: the oracle is always right, a wrong answer always wrong
    task = make_task(PROBE, config.env.num_actions, 2)
    assert isinstance(task, ZzThrowawayProbeTask)
    assert [s.name for s in task.slots] == ["a", "b", "step", "last_action", "feedback"]
    assert task.problems(0).tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    parent = make_parent(config.parent, task)
    env = VectorEnv(parent, 64, 2, gen(0))
    env.reset(2)
    for t in range(2):
        right = task.answer(env.states)
        actions = torch.where(torch.arange(64) % 2 == 0, right, (right + 1) % task.num_actions)
        result = env.step(actions)
        assert torch.equal(result.success, torch.arange(64) % 2 == 0)
        assert torch.equal(result.goal, result.success.float())
        assert bool((result.next_states[:, task.step_slot] == t + 1).all())
        assert torch.equal(result.next_states[:, task.last_action_slot], actions)
    assert bool(result.done.all())

    # the plan's single-episode view
    symbolic_env = SymbolicEnv(DeterministicParent(task), max_steps=2, seed=0)
    state = symbolic_env.reset(1)
    assert set(state.attributes) == {"a", "b", "step", "last_action", "feedback"}
    _, reward, done, info = symbolic_env.step((state.attributes["a"] + state.attributes["b"]) % task.num_actions)
    assert reward.goal == 1.0 and info["success"] and not done

    # Gymnasium: registered under an id derived from the class name
    wmil_gym.register_envs()
    assert wmil_gym.env_ids()[PROBE_GYM_ID] == PROBE
    gym_env = gymnasium.make(PROBE_GYM_ID, num_actions=8, episode_length=2).unwrapped
    assert gym_env.task.name == PROBE
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(gym_env)


def test_the_registry_checks_the_name_of_what_it_registers():
    with pytest.raises(ValueError, match=f"named '{PROBE}'"):
        TASKS["zz_other_probe"] = ZzThrowawayProbeTask
    assert "zz_other_probe" not in TASKS


def test_the_throwaway_task_is_gone(gymnasium):
    assert PROBE not in TASKS and PROBE not in CONFIG_TASK_NAMES
    assert PROBE_GYM_ID not in gymnasium.registry
    with pytest.raises(ValueError, match=f"unknown task '{PROBE}'"):
        make_task(PROBE, 8)


# --------------------------------------------------------------------------------------------
# Every module imports on its own (no import-order dependence)
# --------------------------------------------------------------------------------------------

_PACKAGE_DIR = Path(__file__).resolve().parents[1] / "wmil"
MODULES = sorted(
    ".".join(("wmil", *p.relative_to(_PACKAGE_DIR).with_suffix("").parts)).removesuffix(".__init__")
    for p in _PACKAGE_DIR.rglob("*.py")
    if p.name != "__main__.py"
)

_IMPORT_EACH = r"""
import importlib, json, sys, traceback, warnings
warnings.simplefilter("ignore")
failures = {}
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "wmil" or m.startswith("wmil.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as exc:
        failures[name] = f"{type(exc).__name__}: {exc}"
print(json.dumps(failures))
"""


@pytest.fixture(scope="module")
def import_failures():
    """Each module imported first in a clean ``wmil`` namespace (one subprocess for all)."""
    out = subprocess.run(
        [sys.executable, "-c", _IMPORT_EACH, *MODULES],
        capture_output=True, text=True, timeout=120, cwd=_PACKAGE_DIR.parent,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_module_list_is_complete():
    assert {"wmil", "wmil.envs", "wmil.envs.env", "wmil.parents.base", "wmil.training.rewards"} <= set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_first(import_failures, module):
    assert module not in import_failures, import_failures.get(module)


@pytest.mark.parametrize("task_name", sorted(TASKS))
def test_fresh_problems_reveal_no_answer_and_keep_to_the_split(task_name):
    """next_problem fresh: after each answer the problem is a new draw of the level's training
    problems, whatever the action (so the next state holds no answer), while step, last action and
    feedback move on as under the rules."""
    from wmil.parents.base import Split

    task = make_task(task_name, 16, 4)
    parent = DeterministicParent(task, Split(3, "training"))
    slots = task.num_problem_slots
    outcomes = []
    for actions in (torch.zeros(256, dtype=torch.long), torch.full((256,), 5)):
        env = VectorEnv(parent, 256, 4, gen(7), next_problem="fresh")
        states = env.reset(2)
        step = env.step(actions)
        rules = parent.step(states, actions)[1]
        assert torch.equal(step.next_states[:, slots:], rules[:, slots:])  # the history slots as the rules set them
        outcomes.append(step.next_states[:, :slots])
    assert torch.equal(outcomes[0], outcomes[1])  # the next problem does not depend on the answer
    training = {tuple(p) for p in parent.drawn_table(2).tolist()}
    assert {tuple(p) for p in outcomes[0].tolist()} <= training
    assert len({tuple(p) for p in outcomes[0].tolist()}) > 1  # drawn, not one fixed problem
    with pytest.raises(ValueError, match=r"next_problem='later'.*fresh"):
        VectorEnv(parent, 4, 4, gen(0), next_problem="later")

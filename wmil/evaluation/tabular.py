"""``wmil tabular``: the tabular reference, a lookup table that learns from the same verdicts.

It plays the method's runs (``evaluation.method``: task, action space, episode length, level,
episodes per rollout, budget, seeds, training split) and keeps, per problem, the actions judged
wrong and the one judged right. It memorises perfectly (every problem's answer, after at most
``A - 1`` failures) and generalises not at all (a problem it never saw gets a uniform guess): the
two ends between which the baby's training-problem and held-out-problem success say whether it
learned the rule. Its rolling success and steps to 90% are counted as the trainer counts the
baby's, and it is evaluated on the run's own held-out streams (``wmil evaluate``'s episodes).
"""

from __future__ import annotations

from typing import Any

import torch

from wmil.config import EvaluationConfig, Params, RunConfig
from wmil.envs.env import VectorEnv
from wmil.evaluation.held_out import held_out_problems
from wmil.parents import Split, make_parent
from wmil.parents.base import Part
from wmil.parents.deterministic import DeterministicParent
from wmil.results import STEPS_TO_90, SUCCESS_THRESHOLDS
from wmil.seeding import held_out_seed, level_seed, split_seed, training_seeds
from wmil.tasks.rules import NUM_LEVELS, Task, make_task
from wmil.training.curriculum import SuccessWindow

REPORTED_SUCCESS = SUCCESS_THRESHOLDS[STEPS_TO_90]  # the rolling success whose env steps are reported, as the baby's


class LookupTable:
    """Per problem (its problem slots as one mixed-radix code): ``right (codes,)`` the action
    judged right (-1: none yet) and ``wrong (codes, A)`` the actions judged wrong. It answers the
    one judged right, else uniformly among the actions not judged wrong."""

    def __init__(self, task: Task):
        self.task = task
        sizes = task.cardinalities[: task.num_problem_slots]
        self.radix = torch.cumprod(torch.cat([torch.ones(1, dtype=torch.long), sizes[:-1]]), 0)
        codes = int(sizes.prod())
        self.right = torch.full((codes,), -1, dtype=torch.long)
        self.wrong = torch.zeros(codes, task.num_actions, dtype=torch.bool)

    def codes(self, states: torch.Tensor) -> torch.Tensor:
        return (states[:, : self.task.num_problem_slots] * self.radix).sum(1)

    def act(self, states: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Actions ``LongTensor (n,)`` for ``states (n, num_slots)``."""
        codes = self.codes(states)
        guesses = torch.multinomial((~self.wrong[codes]).float(), 1, generator=generator).squeeze(1)
        return torch.where(self.right[codes] >= 0, self.right[codes], guesses)

    def learn(self, states: torch.Tensor, actions: torch.Tensor, reward: torch.Tensor) -> None:
        """Record each verdict ``reward (n,)`` (above 1/2: right)."""
        codes, right = self.codes(states), reward > 0.5
        self.right[codes[right]] = actions[right]
        self.wrong[codes[~right], actions[~right]] = True


def play(table: LookupTable, env: VectorEnv, level: int, generator: torch.Generator,
         learn: bool) -> torch.Tensor:
    """One batch of episodes at ``level``; returns their successes ``BoolTensor (num_envs,)``
    (every answer right, by the rules)."""
    states = env.reset(level)
    all_right = torch.ones(env.num_envs, dtype=torch.bool)
    for _ in range(env.episode_length):
        actions = table.act(states, generator)
        step = env.step(actions)
        if learn:
            table.learn(states, actions, step.goal)
        all_right &= step.success
        states = step.next_states
    return all_right


def tabular_run(config: RunConfig, settings: EvaluationConfig) -> dict[str, Any]:
    """One run of the tabular reference at ``config``'s settings: env steps to 90% rolling success
    (over ``training.success_window`` episodes; None: never within the budget), then success on
    ``settings.episodes`` fresh episodes of its training problems and of its held-out problems
    (None where the task holds none out) at the run's level."""
    task = make_task(config.env.task, config.env.num_actions, config.env.episode_length)
    seeds = training_seeds(config.seed)
    split = split_seed(config.seed)
    parent = make_parent(config.parent, task, torch.Generator().manual_seed(seeds.parent), split=Split(split, "training"))
    env = VectorEnv(parent, config.env.num_envs, config.env.episode_length, torch.Generator().manual_seed(seeds.env))
    table, policy = LookupTable(task), torch.Generator().manual_seed(seeds.policy)
    window, env_steps, steps_to = SuccessWindow(config.training.success_window), 0, None
    level = config.env.level
    while env_steps < config.training.max_steps:
        window.push(play(table, env, level, policy, learn=True))
        env_steps += env.num_envs * env.episode_length
        if steps_to is None and window.full and window.rate() >= REPORTED_SUCCESS:
            steps_to = env_steps
    parent.close()
    seed = held_out_seed(settings.seed, config.seed)

    def success(part: Part) -> float:
        evaluator = VectorEnv(DeterministicParent(task, Split(split, part)), settings.episodes,
                              config.env.episode_length, torch.Generator().manual_seed(level_seed(seed, level)))
        return float(play(table, evaluator, level, evaluator.generator, learn=False).float().mean())

    has_held_out = len(held_out_problems(task, config.seed, level)) > 0
    return {"seed": config.seed, "level": level, "max_steps": config.training.max_steps,
            STEPS_TO_90: steps_to, "problems_learned": int((table.right >= 0).sum()),
            "success_greedy": success("training"),
            "held_out_success_greedy": success("held_out") if has_held_out else None}


def tabular_reference(params: Params) -> dict[str, Any]:
    """``tabular.json``: the reference for every task and seed of ``evaluation.method``."""
    method = params.evaluation.method
    tasks = params.experiments[method].tasks
    if any(params.run_config(method, t).env.level != NUM_LEVELS - 1 for t in tasks):
        raise ValueError(f"evaluation.method {method!r} must train on the full task (level {NUM_LEVELS - 1})")
    out: dict[str, Any] = {"experiment": method, "tasks": {}}
    for task in tasks:
        runs = [tabular_run(params.run_config(method, task, seed), params.evaluation) for seed in params.seeds_of(method)]
        out["tasks"][task] = {"num_actions": params.run_config(method, task).env.num_actions, "runs": runs}
    return out

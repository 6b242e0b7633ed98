"""The program protocol: the LLM writes the rule once as code, which the parent applies as a table.
Against a scripted endpoint (tests/fake_llm.py) that writes exact, hostile or partial programs;
the bundled coder model itself is tested in test_llm.py."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from conftest import PARAMS_PATH, assert_same_run, every_pair, llm_parent_config
from fake_llm import FakeEndpoint, exact_program, skip_without_exact_program

from wmil.config import load_params
from wmil.errors import LLMError
from wmil.evaluation.llm_audit import audit_programs
from wmil.parents.llm.parent import ParentLLM
from wmil.parents.llm.programs import SlotGrid, answer_prompt, level_prompt
from wmil.tasks.rules import TASKS, make_task

PARAMS = load_params(PARAMS_PATH)


def program_config(url: str, tmp_path: Path, **changes):
    return llm_parent_config("llm", url, tmp_path, **changes)




@pytest.mark.parametrize("name", list(TASKS))
def test_the_slot_grid_holds_every_problem_once_and_indexes_it(name):
    task = make_task(name, 16, 4)
    grid = SlotGrid(task)
    assert len(grid.rows) == len({tuple(r) for r in grid.rows.tolist()})
    for level in range(3):
        table = task.problems(level)
        assert torch.equal(grid.rows[grid.index(table)], table)


def test_prompts_are_the_rule_in_words_and_the_signature():
    task = make_task("sequence_next", 16, 4)
    prompt = answer_prompt(task)
    assert task.rule() in prompt and "`def answer(seq_0, seq_1, seq_2):`" in prompt and "numbers 0 to 15" in prompt
    assert "abs" not in prompt  # the whitelist is told only with a refusal (see programs.py)
    level = level_prompt(task, 2)
    assert task.level_card(2) in level and "`def in_level(seq_0, seq_1, seq_2):`" in level


@pytest.mark.parametrize("name", list(TASKS))
def test_an_exact_program_judges_like_the_rules_with_one_request(name, tmp_path):
    skip_without_exact_program(name)
    task = make_task(name, 16, 4)
    states, actions = every_pair(task)
    with FakeEndpoint() as fake, ParentLLM(task, program_config(fake.url, tmp_path)) as parent:
        verdicts, outcomes, inverse = parent.judge(states, actions)
        reward, nxt = parent.step(states, actions)
        assert fake.requests == 1 and len(outcomes) == 1 and "def answer(" in outcomes[0].value
    rule_reward, rule_next = parent.rules.step(states, actions)
    assert torch.equal(verdicts, (actions == task.answer(states)).long()) and torch.equal(inverse, torch.zeros_like(actions))
    assert torch.equal(reward, rule_reward) and torch.equal(nxt, rule_next)


@pytest.mark.parametrize("name, roles", [("pattern_echo", "reward+transition"), ("sequence_next", "reward+transition"),
                                         ("conditional", "reward+transition"), ("pattern_echo", "all")])
def test_runs_taught_by_exact_programs_are_the_rule_taught_runs(name, roles, tmp_path):
    """Proves the program path is wired (not a finding): rewards, transitions and, with roles all
    where the grid's order is the table's (PatternEcho), the problems drawn."""
    from wmil.training.trainer import Trainer

    steps = {"training": {"max_steps": 1024, "save_every": 512}}
    rule = PARAMS.run_config("ppo", name, 1, steps)
    with FakeEndpoint() as fake:
        llm = PARAMS.run_config("llm", name, 1, {**steps, "parent": {"llm": {
            "base_url": fake.url, "roles": roles, "cache_path": str(tmp_path / "cache.sqlite")}}})
        Trainer(llm, tmp_path / "llm").train()
        assert fake.requests == (2 if roles == "all" else 1)  # answer (and in_level at level 2): once each
    Trainer(rule, tmp_path / "rule").train()
    assert_same_run(tmp_path / "llm", tmp_path / "rule", ignore={"experiment"}, same_config=False)


@pytest.mark.parametrize("name", list(TASKS))
def test_roles_all_draws_only_the_problems_the_in_level_program_accepts(name, tmp_path):
    skip_without_exact_program(name)
    task = make_task(name, 16, 4)
    config = program_config("", tmp_path, roles="all")
    with FakeEndpoint() as fake, ParentLLM(task, dataclasses.replace(config, base_url=fake.url)) as parent:
        drawn = parent.generate(2, 4000, torch.Generator().manual_seed(0))[:, : task.num_problem_slots]
        report = audit_programs(parent)
    assert {tuple(r) for r in drawn.tolist()} == {tuple(r) for r in task.problems(2).tolist()}
    for level in range(3):
        block = report["in_level"][str(level)]
        assert (block["precision"], block["recall"], block["accepted"]) == (1.0, 1.0, len(task.problems(level)))
    assert "def answer(" in report["answer"] and len(report["responses"]) == 1


@pytest.mark.parametrize("policy", ["zero", "error"])
def test_an_in_level_program_that_accepts_no_problem_leaves_the_rules_table_or_is_named(policy, tmp_path):
    task = make_task("conditional", 16, 4)
    config = program_config("", tmp_path, roles="all", on_invalid=policy)
    with FakeEndpoint("empty-levels") as fake, ParentLLM(task, dataclasses.replace(config, base_url=fake.url)) as parent:
        if policy == "error":
            with pytest.raises(LLMError, match=r"(?s)in_level program for level 2 accepts no problem.*its program:.*return False"):
                parent.problem_table(2)
            return
        assert torch.equal(parent.problem_table(2), task.problems(2))


def test_an_llm_that_moves_the_world_never_takes_training_to_a_held_out_problem(tmp_path):
    """A SequenceNext program one above the next term widens the step at every move, so from the
    training steps it reaches the held-out one; the training split puts the rules' problem there
    instead (and counts it), and the held-out part is never touched."""
    from wmil.parents import Split
    from wmil.seeding import split_seed

    task, seed = make_task("sequence_next", 16, 4), split_seed(10)
    config = program_config("", tmp_path, on_invalid="zero")
    g = torch.Generator().manual_seed(0)
    with FakeEndpoint("step-plus-one") as fake, ParentLLM(task, dataclasses.replace(config, base_url=fake.url),
                                                          split=Split(seed, "training")) as parent:
        states = parent.generate(2, 2000, g)
        for _ in range(4):
            _, states = parent.step(states, torch.randint(16, (2000,), generator=g))
            assert not task.held_out(states, seed).any()
        assert parent.stats()["held_out_replaced"] > 0  # it did lead there


def test_a_program_replayed_from_the_cache_is_checked_again_and_a_tampered_one_named(tmp_path):
    """The response cache is a file anyone can edit (and its export is in git): a program it
    replays is checked before it runs, like a fresh one; an escape planted there never runs."""
    import json
    import os
    import sqlite3

    from wmil.parents.llm.server import free_port

    canary = tmp_path / "canary"
    escape = ("def answer(target):\n    return [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == "
              f"'BuiltinImporter'][0].load_module('posix').system('touch {canary}')\n")
    task = make_task("pattern_echo", 16, 4)
    states, actions = every_pair(task)
    config = program_config("", tmp_path)
    with FakeEndpoint() as fake, ParentLLM(task, dataclasses.replace(config, base_url=fake.url)) as parent:
        verdicts = parent.judge(states, actions)[0]
    dead = dataclasses.replace(config, base_url=f"http://127.0.0.1:{free_port()}/v1", max_retries=0)
    with ParentLLM(task, dead) as replay:  # the cached program is checked again: no request needed
        assert torch.equal(replay.judge(states, actions)[0], verdicts)
    with sqlite3.connect(config.cache_path) as db:
        assert db.execute("UPDATE responses SET value = ?", (json.dumps(escape),)).rowcount == 1
    with (ParentLLM(task, dead) as replay,
          pytest.raises(LLMError, match=r"(?s)program \(replayed from the response cache .*cache.sqlite: delete it.*"
                                        r"does not pass the sandbox: call of the attribute .system.*__subclasses__")):
        replay.judge(states, actions)
    assert not os.path.exists(canary)


def test_a_refused_program_is_asked_again_once_with_the_refusal_and_then_cached(tmp_path):
    task = make_task("pattern_echo", 16, 4)
    states, actions = every_pair(task)
    config = program_config("", tmp_path)
    with FakeEndpoint("refuse-first") as fake:
        with ParentLLM(task, dataclasses.replace(config, base_url=fake.url)) as parent:
            verdicts, outcomes, _ = parent.judge(states, actions)
            assert fake.requests == 2 and [o.value is None for o in outcomes] == [True, False]
            assert "import" in outcomes[0].raw and parent.stats()["invalid_responses"] == 1
        assert torch.equal(verdicts, (actions == task.answer(states)).long())
        with ParentLLM(task, dataclasses.replace(config, base_url=fake.url)) as warm:
            assert torch.equal(warm.judge(states, actions)[0], verdicts)
        assert fake.requests == 2  # both answers (the refused one too) came from the cache


def test_the_refusal_prompt_names_the_construct_and_the_whitelist(tmp_path):
    from wmil.parents.llm.programs import refused_prompt

    text = refused_prompt("Q", "```python\ndef answer(target):\n    import os\n```", "program refused: import (line 2)")
    assert text.startswith("Q\n\n") and "import (line 2)" in text and "abs, min and max" in text


@pytest.mark.parametrize("policy", ["zero", "deterministic", "error"])
def test_a_program_refused_twice_leaves_it_to_on_invalid(policy, tmp_path):
    task = make_task("pattern_echo", 16, 4)
    states, actions = every_pair(task)
    with FakeEndpoint("hostile") as fake, \
            ParentLLM(task, program_config(fake.url, tmp_path, on_invalid=policy)) as parent:
        if policy == "error":
            with pytest.raises(LLMError, match=r"program answer answer still invalid.*import"):
                parent.step(states, actions)
            return
        reward, nxt = parent.step(states, actions)
        assert fake.requests == 2 and parent.stats()["fallbacks"] == len(actions)
    rule_reward, rule_next = parent.rules.step(states, actions)
    assert torch.equal(reward, rule_reward if policy == "deterministic" else torch.zeros_like(reward))
    assert torch.equal(nxt[:, :-1], rule_next[:, :-1])  # the world moves on by the rules' answer


def test_states_a_program_cannot_answer_fall_back_or_are_named(tmp_path):
    task = make_task("pattern_echo", 16, 4)
    states, actions = every_pair(task)
    at_3 = states[:, 0] == 3
    with FakeEndpoint("partial") as fake:
        with ParentLLM(task, program_config(fake.url, tmp_path, on_invalid="zero")) as parent:
            reward, _ = parent.step(states, actions)
            assert parent.stats()["fallbacks"] == int(at_3.sum())
        with (ParentLLM(task, program_config(fake.url, tmp_path / "e", on_invalid="error")) as strict,
              pytest.raises(LLMError, match=r"gives no action in 0..15 in state \[3, 0, 16, 0\]")):
            strict.step(states, actions)
    rule_reward, _ = parent.rules.step(states, actions)
    assert torch.equal(reward, torch.where(at_3, 0.0, rule_reward))


def test_the_audit_of_exact_programs_is_perfect_and_covers_every_problem(tmp_path):
    import yaml

    from wmil.config import parse_params
    from wmil.evaluation.llm_audit import run_llm_audit

    raw = yaml.safe_load(PARAMS_PATH.read_text())
    with FakeEndpoint() as fake:
        raw["defaults"]["parent"]["llm"].update(base_url=fake.url, cache_path=str(tmp_path / "cache.sqlite"))
        raw["experiments"]["llm"]["overrides"]["parent"]["llm"]["base_url"] = fake.url
        raw["llm_audit"].update(protocols=["program", "solve"], solve_states_per_level=2)
        report, _ = run_llm_audit(parse_params(raw))
    program = report["protocols"]["program"]
    assert (program["model"], program["num_actions"], program["episode_length"]) == (
        "qwen2.5-coder-1.5b-instruct", 16, 4)
    assert report["protocols"]["solve"]["model"] == "smollm2-135m-instruct"
    assert report["protocols"]["solve"]["num_actions"] == 8
    assert set(program["by_task_level"]) == set(TASKS)
    for name, levels in program["by_task_level"].items():
        task = make_task(name, 16, 4)
        exact = exact_program(task, None) is not None
        for level, block in levels.items():
            assert block["states"] == block["problems"] == len(task.problems(int(level)))
            if not exact:  # the fake LLM writes no program: asked again once, then every answer is invalid
                assert (block["j"], block["invalid_rate"], block["requests"]) == (0.0, 1.0, 2)
                continue
            assert (block["j"], block["invalid_rate"], block["requests"]) == (1.0, 0.0, 1)
            assert block["episode"]["ceiling"] == {"mean": 1.0, "lo": 1.0, "hi": 1.0, "pick_variance": 0.0}
        assert program["programs"][name]["in_level"]["2"]["recall"] == (1.0 if exact else 0.0)
    # SequenceNext's episodes move on to continuations outside the table (136 states at level 2)
    assert program["by_task_level"]["sequence_next"]["2"]["episode"]["states"] == 136


def test_the_episode_ceiling_multiplies_the_states_an_episode_passes_through(tmp_path):
    """A program wrong wherever seq_0 is 3 (``partial``): a SequenceNext episode fails when any
    problem on its way has seq_0 = 3, continuations included; the per-state view sees only the
    table's problems."""
    from wmil.evaluation.llm_audit import audit_level, episode_problems

    task = make_task("sequence_next", 16, 4)
    with FakeEndpoint("partial") as fake, ParentLLM(task, program_config(fake.url, tmp_path)) as parent:
        block, _ = audit_level(parent, 2, 1000, seed=0)
    problems = task.problems(2)
    paths = episode_problems(task, problems)
    chance = [(1 / 16) ** len({tuple(p) for p in path.tolist() if p[0] == 3}) for path in paths]
    assert block["episode"]["ceiling"]["mean"] == pytest.approx(sum(chance) / len(chance))
    assert block["ceiling"]["mean"] == pytest.approx(((problems[:, 0] != 3).sum() + (problems[:, 0] == 3).sum() / 16)
                                                     / len(problems))
    assert block["episode"]["ceiling"]["mean"] < block["ceiling"]["mean"]
    assert block["episode"]["continuations"] == 136 - 70 and block["episode"]["requests"] == 0  # the same table
    assert {s["state"].split(",")[0] for s in block["episode"]["per_state"] if s["invalid"]} >= {"seq_0=3"}

"""Judge protocols, rule cards, the audit and the noise-corrected reward, against a scripted
OpenAI-compatible endpoint on 127.0.0.1 (tests/fake_llm.py), so that they run without the model."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import PARAMS_PATH, assert_same_run, every_pair, llm_parent_config
from fake_llm import FakeEndpoint, read_prompt

from wmil.cli import main
from wmil.config import load_params, parse_params
from wmil.envs.env import RewardVector
from wmil.evaluation.llm_audit import run_llm_audit, state_ceiling
from wmil.parents.llm import prompts
from wmil.parents.llm.answers import INVALID
from wmil.parents.llm.parent import ParentLLM
from wmil.parents.llm.protocols import PROTOCOLS
from wmil.tasks.rules import TASKS, make_task
from wmil.tasks.state import State
from wmil.training.rewards import RewardComputer

A = 8


def llm_config(url: str, tmp_path: Path, **changes):
    return llm_parent_config("llm_solve", url, tmp_path, **changes)




# ---- rule cards and prompts ---------------------------------------------------------------------
@pytest.mark.parametrize("name", list(TASKS))
def test_every_rule_card_states_the_whole_rule(name):
    task = make_task(name, A, episode_length=3)
    card = task.rule_card
    assert "numbers 0 to 7" in card and "never change which action is correct" in card
    for slot in task.slots:
        assert slot.name in card, slot.name
    for state in task.initial_states(task.problems(2))[:3]:  # every prompt carries the card and the state
        for text in (prompts.verdict_prompt(task, state, 3), prompts.solve_prompt(task, state),
                     prompts.score_prompt(task, state, 3)):
            assert text.startswith(card) and State.from_tensor(task, state).to_prompt() in text


def test_rule_cards_spell_out_what_the_state_does_not_show():
    assert "modulo 8" in make_task("sequence_next", A).rule_card  # the wrap-around
    assert "blank means no term" in make_task("sequence_next", A).rule_card
    conditional = make_task("conditional", A).rule_card
    assert "With rule 2" in conditional and "7 minus the shape" in conditional and "red" in conditional


@pytest.mark.parametrize("name", list(TASKS))
def test_the_fake_endpoint_reads_back_every_state_it_is_shown(name):
    task = make_task(name, A, episode_length=3)
    states = task.initial_states(task.problems(2))
    for state in states:
        got_task, got_state, action = read_prompt(prompts.verdict_prompt(task, state, 5))
        assert got_task.name == name and torch.equal(got_state, state) and action == 5


@pytest.mark.parametrize("text, value", [('{"action": 3}', 3), ('Sure: {"action": 0}', 0)])
def test_parse_action_accepts(text, value):
    assert prompts.parse_action(text, A) == value


@pytest.mark.parametrize("text, reason", [('{"action": 8}', "out of range"), ('{"action": "3"}', "integer"),
                                          ('{"answer": 3}', "missing key 'action'"), ("3", "no JSON object")])
def test_parse_action_rejects(text, reason):
    with pytest.raises(prompts.InvalidAnswer, match=reason):
        prompts.parse_action(text, A)


def test_parse_yes_no_adds_spellings_and_bounds_a_missing_word():
    assert prompts.parse_yes_no([(" Yes", np.log(0.5)), ("yes", np.log(0.1)), ("No", np.log(0.2))]) == pytest.approx(np.log(3))
    assert prompts.parse_yes_no([("Yes", -0.1), ("The", -3.0)]) == pytest.approx(-0.1 + 3.0)  # No <= P(The)
    with pytest.raises(prompts.InvalidAnswer, match="neither Yes nor No"):
        prompts.parse_yes_no([("The", -0.1), ("A", -2.0)])
    with pytest.raises(prompts.InvalidAnswer, match="no log-probabilities"):
        prompts.parse_yes_no(None)


# ---- protocols against a strong model -----------------------------------------------------------
@pytest.mark.parametrize("protocol", list(PROTOCOLS))
@pytest.mark.parametrize("name", list(TASKS))
def test_an_oracle_endpoint_gives_the_rules_verdicts_under_every_protocol(protocol, name, tmp_path):
    task = make_task(name, A)
    states, actions = every_pair(task)
    with FakeEndpoint() as fake, ParentLLM(task, llm_config(fake.url, tmp_path, protocol=protocol)) as parent:
        verdicts, _, _ = parent.judge(states, actions)
        assert torch.equal(verdicts, (actions == task.answer(states)).long())
        problems = len(task.problems(2))
        calibration = {"verdict": 0, "solve": 0, "score": problems * A}[protocol]  # batch: the top level's pairs
        # solve asks once per state, A times fewer than the pairwise protocols; score's calibration
        # set is the top level's pairs, the very questions judged here: no request twice
        expected = {"verdict": problems * A, "solve": problems, "score": problems * A}[protocol]
        assert fake.requests == expected and calibration <= expected


def test_solve_asks_once_per_distinct_state_and_memoizes(tmp_path):
    task = make_task("pattern_echo", A)
    states = task.initial_states(torch.tensor([[1], [2], [1], [2]] * 25))
    actions = torch.arange(100) % A
    with FakeEndpoint() as fake, ParentLLM(task, llm_config(fake.url, tmp_path, protocol="solve")) as parent:
        reward, nxt = parent.step(states, actions)
        assert torch.equal(reward, (actions == states[:, 0]).float()) and fake.requests == 2
        parent.step(states, (actions + 1) % A)  # other actions, same states: nothing new to ask
        assert fake.requests == 2 and parent.stats()["memo_hits"] == 98 + 100


def test_score_calibration_removes_a_yes_bias(tmp_path):
    task = make_task("pattern_echo", A)
    states, actions = every_pair(task)
    rules = (actions == task.answer(states)).long()
    results = {}
    with FakeEndpoint("yes") as fake:
        for calibration in ("none", "contextual", "batch"):
            config = llm_config(fake.url, tmp_path, protocol="score", calibration=calibration,
                                cache_path=str(tmp_path / f"{calibration}.sqlite"))
            with ParentLLM(task, config) as parent:
                results[calibration] = parent.judge(states, actions)[0]
    assert torch.equal(results["none"], torch.ones_like(rules))  # "Yes" to everything: J = 0
    assert torch.equal(results["batch"], rules)  # the mean log-odds sits between right and wrong
    assert torch.equal(results["contextual"], torch.ones_like(rules))  # the content-free bias is not enough here


# ---- the audit ----------------------------------------------------------------------------------
@pytest.mark.parametrize("value, answer, expected", [
    ([1, 0, 0, 0, 0, 0, 0, 0], 0, (1.0, 1.0, 1.0)),       # only the right action approved
    ([0, 1, 0, 0, 0, 0, 0, 0], 0, (0.0, 0.0, 0.0)),       # a systematic error is learnt
    ([1, 1, 0, 0, 0, 0, 0, 0], 1, (0.5, 0.0, 1.0)),       # a tie between two approved actions
    ([1] * 8, 3, (1 / 8, 1 / 8, 1 / 8)),                  # all approved: no signal
    ([0] * 8, 3, (1 / 8, 1 / 8, 1 / 8)),                  # none approved: no signal
    ([INVALID] * 7 + [1], 7, (1.0, 1.0, 1.0)),            # an invalid verdict approves nothing
])
def test_state_ceiling(value, answer, expected):
    assert state_ceiling(np.array(value), answer) == pytest.approx(expected)


def audit_params(url: str, tmp_path: Path) -> dict:
    raw = yaml.safe_load(PARAMS_PATH.read_text())
    raw["defaults"]["parent"]["llm"].update(base_url=url, cache_path=str(tmp_path / "cache.sqlite"))
    raw["llm_audit"].update(states_per_level=2, solve_states_per_level=3)
    return raw


def test_audit_of_an_oracle_is_perfect_and_of_a_yes_sayer_uninformative(tmp_path):
    with FakeEndpoint() as fake:
        report, timing = run_llm_audit(parse_params(audit_params(fake.url, tmp_path)))
    for protocol in ("verdict", "solve", "score"):
        for task, levels in report["protocols"][protocol]["by_task_level"].items():
            for level, b in levels.items():
                states = min(3 if protocol == "solve" else 2, len(make_task(task, A).problems(int(level))))
                assert (b["tpr"], b["fpr"], b["j"], b["invalid_rate"]) == (1.0, 0.0, 1.0, 0.0)
                assert b["ceiling"] == {"mean": 1.0, "lo": 1.0, "hi": 1.0, "pick_variance": 0.0}
                assert b["states"] == states and b["pairs"] == states * A
                assert all(s["approved"] == [s["answer"]] for s in b["per_state"])
        assert set(timing[protocol]) == set(TASKS)
    solve, verdict = report["protocols"]["solve"]["overall"], report["protocols"]["verdict"]["overall"]
    def distinct_states(protocol):  # a state sampled at two levels is asked once
        return sum(len({s["state"] for b in levels.values() for s in b["per_state"]})
                   for levels in report["protocols"][protocol]["by_task_level"].values())

    assert verdict["requests"] == A * distinct_states("verdict") < verdict["pairs"]
    assert solve["requests"] == distinct_states("solve") and solve["prompt_tokens"] == 100 * solve["requests"]

    with FakeEndpoint("yes") as fake:
        biased, _ = run_llm_audit(parse_params(audit_params(fake.url, tmp_path / "yes")))
    v = biased["protocols"]["verdict"]["overall"]
    assert (v["tpr"], v["fpr"], v["j"]) == (1.0, 1.0, 0.0) and v["ceiling"]["mean"] == pytest.approx(1 / A)
    assert v["ceiling"]["pick_variance"] == pytest.approx((1 / A) * (1 - 1 / A))  # every pick is a coin
    assert biased["protocols"]["score"]["overall"]["j"] == 1.0  # batch calibration (the default) undoes it


def test_warm_audit_sends_nothing_and_says_the_same(tmp_path):
    raw = audit_params("", tmp_path)
    raw["llm_audit"]["protocols"] = ["solve", "score"]
    with FakeEndpoint() as fake:
        raw["defaults"]["parent"]["llm"]["base_url"] = fake.url
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
        assert main(["llm-audit", "--params", str(tmp_path / "params.yaml"), "--out", str(tmp_path / "a.json"),
                     "--timing", str(tmp_path / "t.json")]) == 0
        cold = fake.requests
        assert main(["llm-audit", "--params", str(tmp_path / "params.yaml"), "--out", str(tmp_path / "b.json")]) == 0
        assert fake.requests == cold  # every answer came from the cache
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()  # no seconds in the report
    assert "request_seconds" in (tmp_path / "t.json").read_text()


# ---- the same experiments against any endpoint ----------------------------------------------------
@pytest.mark.parametrize("experiment, task, protocol", [
    ("llm_solve", "pattern_echo", "solve"), ("llm_solve", "pattern_echo", "verdict"),
    ("llm_solve", "pattern_echo", "score")])
def test_llm_runs_against_a_strong_endpoint_match_the_rule_parent(experiment, task, protocol, tmp_path, monkeypatch):
    from wmil.training.trainer import Trainer

    params = load_params(PARAMS_PATH)
    steps = {"training": {"max_steps": 1500, "save_every": 500}}
    rule = params.run_config(params.experiments[experiment].extends, task, 1, steps)
    monkeypatch.setenv("WMIL_TEST_ENDPOINT_KEY", "sk-test-not-a-real-key")
    with FakeEndpoint() as fake:  # any OpenAI-compatible endpoint: its url, model name and key variable
        llm = params.run_config(experiment, task, 1, {**steps, "parent": {"llm": {
            "base_url": fake.url, "model": "strong-model", "api_key_env": "WMIL_TEST_ENDPOINT_KEY",
            "protocol": protocol, "cache_path": str(tmp_path / "cache.sqlite")}}})
        Trainer(llm, tmp_path / "llm").train()
        assert fake.requests > 0
    Trainer(rule, tmp_path / "rule").train()
    assert_same_run(tmp_path / "llm", tmp_path / "rule", ignore={"experiment"}, same_config=False)


def test_an_endpoint_that_answers_with_a_web_page_is_named(tmp_path):
    task = make_task("pattern_echo", A)
    with (FakeEndpoint("html") as fake, ParentLLM(task, llm_config(fake.url, tmp_path)) as parent,
          pytest.raises(Exception, match=r"not a chat completion .*Bad Gateway") as failure):
        parent.reward(*every_pair(task, 0))
    from wmil.errors import LLMError

    assert isinstance(failure.value, LLMError)


def test_a_hung_endpoint_times_out_within_its_budget(tmp_path):
    import time

    task = make_task("pattern_echo", A)
    config = llm_config("", tmp_path, timeout_s=1.0, max_retries=1)
    with FakeEndpoint("hang") as fake:
        config = dataclasses.replace(config, base_url=fake.url)
        with ParentLLM(task, config, backoff_s=0.1) as parent:
            started = time.perf_counter()
            with pytest.raises(Exception, match=r"solve request failed after 2 attempts: timed out after 1 s"):
                parent.reward(task.initial_states(torch.tensor([[3]])), torch.tensor([3]))
            assert time.perf_counter() - started < 1.0 * 2 + 0.1 + 2.0  # two timeouts, one backoff, some slack
        assert fake.requests == 2


# ---- a learner that knows its parent's error rates ------------------------------------------------
@pytest.mark.parametrize("fpr, fnr", [(0.3, 0.3), (0.6, 0.0), (0.1, 0.5)])
def test_the_noise_corrected_reward_is_unbiased(fpr, fnr):
    from wmil.parents import DeterministicParent, RewardNoise

    task = make_task("pattern_echo", A)
    config = load_params(PARAMS_PATH).run_config("mvp", "pattern_echo").rewards
    computer = RewardComputer(config, task, (fpr, fnr))
    noisy = RewardNoise(DeterministicParent(task), fpr, fnr, torch.Generator().manual_seed(0))
    states = task.initial_states(torch.zeros(200_000, 1, dtype=torch.long))
    for action, truth in ((0, 1.0), (3, 0.0)):
        observed = noisy.reward(states, torch.full((200_000,), action))
        zeros = torch.zeros_like(observed)
        corrected = computer.scalar(RewardVector(observed, zeros, zeros))
        assert float(corrected.mean()) == pytest.approx(truth, abs=0.02)  # E[surrogate] = the true reward
        if (fnr if truth else fpr) > 0:
            assert float(observed.mean()) != pytest.approx(truth, abs=0.02)  # the raw verdict is biased


def test_noise_correction_needs_known_rates():
    raw = yaml.safe_load(PARAMS_PATH.read_text())
    raw["experiments"]["llm_solve"]["overrides"]["rewards"] = {"noise_correction": True}
    with pytest.raises(Exception, match="rewards.noise_correction: the correction needs the parent's error rates"):
        parse_params(raw)

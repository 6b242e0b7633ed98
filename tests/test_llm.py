"""The LLM parent: answer parsing, the response cache, the invalid-answer policies and, against the
real bundled llama.cpp server (integration), round trips, caching, concurrency, failures and keys."""

from __future__ import annotations

import dataclasses
import http.server
import json
import multiprocessing
import os
import platform
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import jsonschema
import pytest
import torch
import yaml
from conftest import assert_same_run

from wmil.cli import main
from wmil.config import load_params
from wmil.errors import LLMError
from wmil.parents.deterministic import DeterministicParent
from wmil.parents.llm.cache import CachedResponse, ResponseCache, request_key
from wmil.parents.llm.models import bundled
from wmil.parents.llm.parent import ParentLLM
from wmil.parents.llm.prompts import InvalidAnswer, parse_problem, parse_verdict, problem_schema, verdict_schema
from wmil.parents.llm.request import Completion
from wmil.parents.llm.server import DEFAULT_MODEL, LLMServerDied, LLMServerError, LocalLLMServer, free_port
from wmil.parents.llm.transport import OpenAITransport
from wmil.tasks.rules import FEEDBACK_RIGHT, FEEDBACK_WRONG, make_task

A = 8
PARAMS_PATH = Path(__file__).resolve().parents[1] / "params.yaml"


def llm_config(cache_path: str | Path = "", **changes):
    """The ``llm`` experiment's parent.llm settings with ``changes`` (default: no cache, and the
    verdict protocol, whose answers the scripted endpoints here give)."""
    base = load_params(PARAMS_PATH).run_config("llm_solve", "pattern_echo").parent.llm
    return dataclasses.replace(base, cache_path=str(cache_path), **{"protocol": "verdict", **changes})


def echo_batch(targets: list[int], actions: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    task = make_task("pattern_echo", A)
    return task.initial_states(torch.tensor(targets).unsqueeze(1)), torch.tensor(actions)


# ---- parsing and validation of recorded responses ----------------------------------------------
@pytest.mark.parametrize("text, verdict", [
    ('{"correct": true}', True),
    ('{ "correct" : false }', False),
    ('Sure! Here is my answer:\n```json\n{"correct": true}\n```', True),  # text around the JSON
])
def test_parse_verdict_accepts(text, verdict):
    assert parse_verdict(text) is verdict


@pytest.mark.parametrize("text, reason", [
    ("yes, that is correct", "no JSON object"),
    ('{"correct": tr', "not valid JSON"),                 # cut off by max_tokens
    ('{"correct": "true"}', "must be true or false"),
    ('{"correct": 1}', "must be true or false"),
    ("{}", "missing key 'correct'"),
    ('{"correct": true, "reason": "it matches"}', "unknown key 'reason'"),
    ('{"verdict": true}', "missing key 'correct'"),
])
def test_parse_verdict_rejects(text, reason):
    with pytest.raises(InvalidAnswer, match=reason):
        parse_verdict(text)


def test_parse_problem_checks_keys_types_and_ranges():
    slots = make_task("sequence_next", A).problem_slots  # three slots of 0..8 (8 = blank)
    assert parse_problem('Next: {"seq_0": 2, "seq_1": 3, "seq_2": 8} done', slots) == (2, 3, 8)
    for text, reason in [
        ('{"seq_0": 2, "seq_1": 3, "seq_2": 9}', r"'seq_2'=9 is out of range; allowed: 0..8"),
        ('{"seq_0": -1, "seq_1": 3, "seq_2": 4}', "out of range"),
        ('{"seq_0": 2.0, "seq_1": 3, "seq_2": 4}', "must be an integer"),
        ('{"seq_0": true, "seq_1": 3, "seq_2": 4}', "must be an integer"),
        ('{"seq_0": "2", "seq_1": 3, "seq_2": 4}', "must be an integer"),
        ('{"seq_0": 2, "seq_1": 3}', "missing key 'seq_2'"),
        ('{"seq_0": 2, "seq_1": 3, "seq_2": 4, "seq_3": 5}', "unknown key 'seq_3'"),
        ("[2, 3, 4]", "no JSON object"),
    ]:
        with pytest.raises(InvalidAnswer, match=reason):
            parse_problem(text, slots)


def test_generated_problem_must_belong_to_the_level():
    with ParentLLM(make_task("pattern_echo", A), llm_config(), transport=FakeTransport(lambda _: "")) as parent:
        request = parent.requests.generate(0, 1)  # level 0: targets 0..4
        assert request.parse(Completion('{"target": 4}', 0, 0)) == (4,)
        with pytest.raises(InvalidAnswer, match="not a problem of level 0"):
            request.parse(Completion('{"target": 6}', 0, 0))  # a valid slot value, but a level-2 problem


def test_row_codes_are_exact():
    task = make_task("sequence_next", A, episode_length=3)
    with ParentLLM(task, llm_config(), transport=FakeTransport(lambda _: "")) as parent:
        g = torch.Generator().manual_seed(0)
        states = torch.stack([torch.randint(int(c), (4000,), generator=g) for c in task.cardinalities], 1)
        actions = torch.randint(A, (4000,), generator=g)
        rows = torch.cat([states, actions.unsqueeze(1)], 1)
        assert len(torch.unique(parent.codes.rows(states, actions))) == len(torch.unique(rows, dim=0))


# ---- the response cache -------------------------------------------------------------------------
def test_cache_hits_misses_persistence_and_wal(tmp_path):
    path = tmp_path / "cache.sqlite"
    messages = [{"role": "user", "content": "Is 3 right?"}]
    key = request_key("m", messages, {"temperature": 0.0, "schema": verdict_schema()})
    cache = ResponseCache(path)
    assert cache.get(key) is None
    cache.put(key, "m", '{"correct": true}', True, 0.25)
    cache.put(key, "m", '{"correct": false}', False, 0.5)  # the first answer stays
    hit = cache.get(key)
    assert (hit.raw, hit.value, hit.latency_s) == ('{"correct": true}', True, 0.25)
    assert (cache.hits, cache.misses) == (1, 1)
    assert cache._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    cache.close()
    reopened = ResponseCache(path)
    assert reopened.get(key).value is True and len(reopened) == 1
    reopened.close()
    # any change to what is asked is another key
    assert len({key, request_key("m2", messages, {"temperature": 0.0, "schema": verdict_schema()}),
                request_key("m", messages, {"temperature": 0.5, "schema": verdict_schema()}),
                request_key("m", messages, {"temperature": 0.0, "schema": problem_schema(make_task("pattern_echo", A).problem_slots)}),
                request_key("m", [{"role": "user", "content": "Is 4 right?"}], {"temperature": 0.0, "schema": verdict_schema()})}) == 5


def test_cache_put_returns_the_row_kept_to_every_writer(tmp_path):
    first, second = ResponseCache(tmp_path / "cache.sqlite"), ResponseCache(tmp_path / "cache.sqlite")
    kept = CachedResponse('{"correct": true}', True, 0.25)
    assert first.put("k", "m", '{"correct": true}', True, 0.25) == kept
    assert second.put("k", "m", '{"correct": false}', False, 0.5) == kept  # lost the race: gets the winner's
    # a request that several keys answer: nothing is stored beside the row one of them has
    assert second.put("k-invalid", "m", "Hmm.", None, 0.1, ("k-invalid", "k")) == kept
    assert first.get("k-invalid") is None and first.get("k-invalid", "k") == kept
    # stored first, a request's own invalid outcome answers it before a valid row stored later
    invalid = second.put("j-invalid", "m", "Hmm.", None, 0.1, ("j-invalid", "j"))
    assert first.put("j", "m", '{"correct": true}', True, 0.2, ("j",)).value is True
    assert first.get("j-invalid", "j") == invalid and invalid.value is None
    first.close()
    second.close()


def test_the_export_is_sorted_rows_without_wall_clock_and_rebuilds_the_database(tmp_path):
    """Two caches filled in opposite orders, with other latencies, export the same bytes; a fresh
    clone's empty database is rebuilt from the export alone and answers as the original did."""
    rows = [(f"k{i}", f'{{"correct": {str(i % 2 == 0).lower()}}}', i % 2 == 0) for i in range(5)]
    exports = []
    for name, order, latency in (("a", rows, 0.1), ("b", rows[::-1], 7.0)):
        cache = ResponseCache(tmp_path / name / "cache.sqlite")
        for key, raw, value in order:
            cache.put(key, "m", raw, value, latency, tokens=(11, 3))
        cache.close()
        exports.append((tmp_path / name / "cache.jsonl").read_bytes())
    assert exports[0] == exports[1]
    lines = [json.loads(line) for line in exports[0].decode().splitlines()]
    assert [line["key"] for line in lines] == sorted(k for k, _, _ in rows)
    assert set(lines[0]) == {"key", "model", "raw", "value", "prompt_tokens", "completion_tokens"}
    clone = tmp_path / "clone"
    clone.mkdir()
    (clone / "cache.jsonl").write_bytes(exports[0])
    rebuilt = ResponseCache(clone / "cache.sqlite")
    assert len(rebuilt) == 5
    assert rebuilt.get("k2") == CachedResponse('{"correct": true}', True, 0.0, 11, 3)
    rebuilt.close()  # gained no row: the export is left as it was
    assert (clone / "cache.jsonl").read_bytes() == exports[0]
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "cache.jsonl").write_text("not json\n")
    with pytest.raises(LLMError, match="bad/cache.jsonl: not a response-cache export"):
        ResponseCache(tmp_path / "bad" / "cache.sqlite")


def _rows(path) -> int:
    cache = ResponseCache(path)
    try:
        return len(cache)
    finally:
        cache.close()


def _writer(path: str, name: str, count: int, start) -> None:
    start.wait()
    cache = ResponseCache(path)
    for i in range(count):
        cache.put(f"{name}-{i}", "m", f'{{"correct": {"true" if i % 2 else "false"}}}', bool(i % 2), 0.1)
    cache.close()


def test_cache_concurrent_writers_and_a_killed_writer(tmp_path):
    path = str(tmp_path / "cache.sqlite")
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    writers = [ctx.Process(target=_writer, args=(path, name, 300, start)) for name in ("a", "b")]
    killed = ctx.Process(target=_writer, args=(path, "k", 10**9, start))
    for p in (*writers, killed):
        p.start()
    start.set()
    for p in writers:
        p.join(60)
        assert p.exitcode == 0
    os.kill(killed.pid, signal.SIGKILL)  # mid-write, most likely
    killed.join()
    cache = ResponseCache(path)
    assert cache._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = cache._db.execute("SELECT key, raw, value FROM responses").fetchall()
    assert sum(k.startswith(("a-", "b-")) for k, _, _ in rows) == 600
    assert all(json.loads(raw)["correct"] == json.loads(value) for _, raw, value in rows)
    cache.close()


# ---- the invalid-answer policies (a scripted endpoint) ------------------------------------------
class FakeTransport:
    """Answers each request with ``answer(user prompt)``; counts the requests."""

    url = "fake://endpoint"

    def __init__(self, answer):
        self.answer = answer
        self.calls = 0

    async def complete(self, ask):
        self.calls += 1
        return Completion(self.answer(ask.messages[-1]["content"]), 10, 2)

    async def aclose(self):
        pass


def never_right_except_target_3(prompt: str) -> str:
    """An LLM that rambles on target 3 and calls every other answer wrong."""
    return "Hmm, let me think." if "target=3," in prompt else '{"correct": false}'


def test_on_invalid_error_names_endpoint_kind_and_response():
    fake = FakeTransport(never_right_except_target_3)
    with ParentLLM(make_task("pattern_echo", A), llm_config(on_invalid="error", max_retries=2), transport=fake) as parent:
        with pytest.raises(LLMError, match=r"fake://endpoint: verdict answer still invalid after 3 attempts.*Hmm, let me think"):
            parent.step(*echo_batch([3, 1], [3, 1]))
        assert fake.calls == 1 + 3  # target 1 once, target 3 with its two retries
        assert parent.stats()["invalid_responses"] == 3 and parent.stats()["retries"] == 2


@pytest.mark.parametrize("policy, expected", [("deterministic", [1.0, 0.0, 0.0, 0.0]), ("zero", [0.0, 0.0, 0.0, 0.0])])
def test_on_invalid_fallbacks_are_counted_and_feedback_agrees(policy, expected):
    fake = FakeTransport(never_right_except_target_3)
    with ParentLLM(make_task("pattern_echo", A), llm_config(on_invalid=policy, max_retries=1), transport=fake) as parent:
        states, actions = echo_batch([3, 3, 1, 2], [3, 4, 1, 5])  # rules: right, wrong, right, wrong
        reward, nxt = parent.step(states, actions)
        assert reward.tolist() == expected
        assert torch.equal(nxt[:, parent.task.feedback_slot], torch.where(reward > 0.5, FEEDBACK_RIGHT, FEEDBACK_WRONG))
        assert torch.equal(nxt[:, :-1], DeterministicParent(parent.task).step(states, actions)[1][:, :-1])
        stats = parent.stats()
        assert stats["fallbacks"] == 2 and stats["invalid_responses"] == 4  # 2 distinct rows x 2 attempts
        json.dumps(stats, allow_nan=False)  # the trainer writes them to parent_stats.json


def test_a_parallel_runs_cached_answer_wins(tmp_path):
    """Another run stores its answer between this run's lookup and its store: both use that one."""
    config = llm_config(tmp_path / "cache.sqlite")
    task, (states, actions) = make_task("pattern_echo", A), echo_batch([2], [2])
    rival = ResponseCache(config.cache_path)

    def answer(prompt: str) -> str:
        rival.put(parent.protocol.request(states[0], 2).key, config.model, '{"correct": false}', False, 9.0)
        return '{"correct": true}'

    with ParentLLM(task, config, transport=FakeTransport(answer)) as parent:
        reward, nxt = parent.step(states, actions)
        assert reward.tolist() == [0.0] and nxt[0, parent.task.feedback_slot] == FEEDBACK_WRONG
    rival.close()
    fake = FakeTransport(lambda _: '{"correct": true}')
    with ParentLLM(task, config, transport=fake) as warm:
        assert warm.reward(states, actions).tolist() == [0.0] and fake.calls == 0


def test_invalid_outcomes_are_cached_per_fallback_policy_and_retry_budget(tmp_path):
    cache_path = tmp_path / "cache.sqlite"
    task, (states, actions) = make_task("pattern_echo", A), echo_batch([3], [3])
    rambles, right = (lambda _: "Hmm, let me think."), (lambda _: '{"correct": true}')

    def run(answer, **changes) -> tuple[list[float], int]:
        fake = FakeTransport(answer)
        with ParentLLM(task, llm_config(cache_path, **changes), transport=fake) as parent:
            return parent.reward(states, actions).tolist(), fake.calls

    # on_invalid: error caches no failure, so a rerun asks again instead of failing forever
    with pytest.raises(LLMError, match="not cached: a rerun asks again"):
        run(rambles, on_invalid="error", max_retries=1)
    assert _rows(cache_path) == 0
    assert run(rambles, on_invalid="zero", max_retries=1) == ([0.0], 2)
    assert run(right, on_invalid="zero", max_retries=1) == ([0.0], 0)   # a warm rerun: the same fallback
    assert run(rambles, on_invalid="zero", max_retries=2) == ([0.0], 3)  # a larger budget asks again
    assert run(right, on_invalid="deterministic", max_retries=1) == ([1.0], 1)  # so does another policy
    assert _rows(cache_path) == 3
    assert run(rambles, on_invalid="error", max_retries=1) == ([1.0], 0)  # valid answers serve every policy
    assert run(right, on_invalid="zero", max_retries=1) == ([0.0], 0)  # its own outcome came first


def test_on_invalid_error_replaying_a_cached_failure_names_the_cache(tmp_path):
    config = llm_config(tmp_path / "cache.sqlite", on_invalid="error")
    fake = FakeTransport(lambda _: '{"correct": true}')
    states, actions = echo_batch([3], [3])
    with ParentLLM(make_task("pattern_echo", A), config, transport=fake) as parent:
        cache = ResponseCache(config.cache_path)  # an invalid answer where earlier versions kept it
        cache.put(parent.protocol.request(states[0], 3).key, config.model, "Hmm.", None, 0.1)
        cache.close()
        with pytest.raises(LLMError, match=rf"replayed from the response cache {re.escape(config.cache_path)}: delete"):
            parent.reward(states, actions)
        assert fake.calls == 0


def test_batches_are_deduplicated_and_memoized():
    fake = FakeTransport(lambda prompt: '{"correct": true}')
    with ParentLLM(make_task("pattern_echo", A), llm_config(), transport=fake) as parent:
        states, actions = echo_batch([1, 2, 1, 2] * 10, [1, 1, 1, 0] * 10)  # 3 distinct rows
        assert parent.reward(states, actions).tolist() == [1.0] * 40
        assert fake.calls == 3
        parent.step(states, actions)
        assert fake.calls == 3 and parent.stats()["memo_hits"] == 40 + 37


def test_invalid_transitions_and_problems_fall_back_to_the_rules():
    def answer(prompt: str) -> str:
        if "Propose problem" in prompt:
            return '{"seq_0": 0, "seq_1": 1, "seq_2": 2}'  # a level-1 problem, not a level-0 one
        if "next step" in prompt:
            return '{"seq_0": 1, "seq_1": 2, "seq_2": 99}'  # out of range
        return '{"correct": true}'

    task = make_task("sequence_next", A)
    fake = FakeTransport(answer)
    with ParentLLM(task, llm_config(roles="all", on_invalid="zero", max_retries=0), transport=fake) as parent:
        rules = DeterministicParent(task)
        states = parent.generate(0, 16, torch.Generator().manual_seed(5))
        assert torch.equal(states, rules.generate(0, 16, torch.Generator().manual_seed(5)))  # same draws
        assert torch.equal(parent.generate(1, 4, torch.Generator().manual_seed(5))[:, :3],
                           torch.tensor([[0, 1, 2]] * 4))  # a valid proposal is used
        actions = task.answer(states)
        reward, nxt = parent.step(states, actions)
        assert torch.equal(nxt, rules.step(states, actions)[1])
        assert parent.stats()["fallbacks"] == 16 + 16


# ---- the real local server ----------------------------------------------------------------------
@pytest.mark.skipif(platform.machine() != "x86_64", reason="the portable baseline is defined for x86-64")
def test_the_bundled_llama_cpp_is_built_for_a_portable_x86_64_baseline():
    """No AMX tile and no AVX-512 instructions: a build for the host CPU (llama.cpp's default
    GGML_NATIVE=ON) carries them and crashes where they are advertised but not allowed."""
    import llama_cpp

    libs = sorted((Path(llama_cpp.__file__).parent / "lib").glob("libggml-cpu.so*"))
    assert libs, "llama_cpp ships no libggml-cpu.so"
    code = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(libs[0])], capture_output=True, text=True,
                          check=True).stdout
    assert "vfmadd" in code  # the disassembly is real: AVX2/FMA kernels are there
    amx = re.findall(r"\b(ldtilecfg|tileloadd|tdpbf16ps|tdpbssd)\b", code)
    avx512 = re.findall(r"%zmm\d+", code)
    assert not amx and not avx512, f"{libs[0]}: {len(amx)} AMX and {len(avx512)} AVX-512 operands; rebuild with scripts/setup-env.sh"


@pytest.fixture(scope="session")
def server():
    with LocalLLMServer() as s:
        yield s


class CountingTransport(OpenAITransport):
    """The real client, recording the most requests in flight at once."""

    in_flight = most = 0

    async def complete(self, ask):
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            return await super().complete(ask)
        finally:
            self.in_flight -= 1


@pytest.mark.integration
def test_judgment_round_trip_schema_valid_then_cache_hit_without_server(server, tmp_path):
    task = make_task("sequence_next", A)
    config = llm_config(tmp_path / "cache.sqlite", roles="reward+transition", max_tokens=64)
    states = task.initial_states(torch.tensor([[1, 2, 3], [1, 2, 3]]))
    actions = torch.tensor([4, 6])
    with ParentLLM(task, config, server=server) as parent:
        reward, nxt = parent.step(states, actions)
        assert set(reward.tolist()) <= {0.0, 1.0}
        assert torch.equal(nxt[:, parent.task.feedback_slot], torch.where(reward > 0.5, FEEDBACK_RIGHT, FEEDBACK_WRONG))
        assert parent.stats()["requests"] == 4 and parent.stats()["invalid_responses"] == 0
    cache = ResponseCache(config.cache_path)
    raws = [json.loads(r) for (r,) in cache._db.execute("SELECT raw FROM responses")]  # the whole text is JSON
    cache.close()
    schemas = [verdict_schema(), problem_schema(task.problem_slots)]
    assert len(raws) == 4 and all(sum(_valid(r, s) for s in schemas) == 1 for r in raws)
    with ParentLLM(task, config) as warm:  # no server given: one would start at the first cache miss
        again = warm.step(states, actions)
        assert torch.equal(again[0], reward) and torch.equal(again[1], nxt)
        stats = warm.stats()
        assert stats["requests"] == 0 and stats["cache_hits"] == 4 and warm.endpoint.own_server is None
        assert json.loads(json.dumps(stats, allow_nan=False))["latency_p50_s"] is None


def _valid(instance, schema) -> bool:
    try:
        jsonschema.validate(instance, schema)
        return True
    except jsonschema.ValidationError:
        return False


@pytest.mark.integration
def test_concurrent_batch_calls(server, tmp_path):
    config = llm_config(tmp_path / "cache.sqlite", concurrency=3)
    transport = CountingTransport(server.base_url, "unused", config, local=True)
    with ParentLLM(make_task("pattern_echo", A), config, transport=transport) as parent:
        states, actions = echo_batch([0, 1, 2, 3, 4, 5] * 4, [0, 0, 2, 2, 4, 4] * 4)  # 6 distinct rows
        reward = parent.reward(states, actions)
        assert torch.equal(reward[:6].repeat(4), reward)
        assert parent.stats()["requests"] == 6 and transport.most == 3


@pytest.mark.integration
def test_parent_starts_and_stops_its_own_server(tmp_path):
    with ParentLLM(make_task("pattern_echo", A), llm_config(tmp_path / "c.sqlite")) as parent:
        parent.reward(*echo_batch([2], [2]))
        process = parent.endpoint.own_server.process
        assert parent.stats()["requests"] == 1
    assert process.poll() is not None
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)  # no process of its group is left
    parent.close()  # idempotent


@pytest.mark.integration
def test_server_killed_mid_run_is_reported_dead_at_once(tmp_path):
    config = llm_config(tmp_path / "cache.sqlite", max_retries=3)
    with LocalLLMServer() as doomed, ParentLLM(make_task("pattern_echo", A), config, server=doomed,
                                               backoff_s=5.0) as parent:
        parent.reward(*echo_batch([1], [1]))
        os.killpg(doomed.process.pid, signal.SIGKILL)
        doomed.process.wait()
        started = time.perf_counter()
        with pytest.raises(LLMServerDied, match=r"(?s)was killed by SIGKILL \(exit status 137\) during a verdict request; its log ends"):
            parent.reward(*echo_batch([2, 3], [2, 3]))
        assert time.perf_counter() - started < 5.0  # no retry (each would wait 5 s first) against a dead server
    cache = ResponseCache(config.cache_path)
    assert cache._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert [json.loads(v) in (True, False) for (v,) in cache._db.execute("SELECT value FROM responses")] == [True]
    cache.close()


@pytest.mark.integration
def test_server_killed_before_its_first_request_names_the_signal(tmp_path):
    server = LocalLLMServer().start()
    try:
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait()
        started = time.perf_counter()
        with (ParentLLM(make_task("pattern_echo", A), llm_config(tmp_path / "c.sqlite"), server=server) as parent,
              pytest.raises(LLMServerDied, match=r"(?s)was killed by SIGKILL \(exit status 137\).*its log ends")):
            parent.reward(*echo_batch([2], [2]))
        assert time.perf_counter() - started < 3.0
    finally:
        server.stop()


# A stand-in for llama_cpp.server: lists its model (the alias), then behaves as ``mode`` says on
# chat completions: "fail" answers HTTP 500; "crash" dies by SIGSEGV, as a llama.cpp built for
# another CPU does in its first matrix multiplication; "crash-later" answers the first one (the
# readiness check) and crashes on the next.
FAKE_SERVER = r"""
import http.server, json, os, signal, sys
port, alias, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
completions = 0
print("fake llama server: loading model weights ... done", flush=True)
class Handler(http.server.BaseHTTPRequestHandler):
    def reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def do_GET(self):
        self.reply(200, {"object": "list", "data": [{"id": alias, "object": "model"}]})
    def do_POST(self):
        global completions
        completions += 1
        if mode == "crash" or (mode == "crash-later" and completions > 1):
            print("ggml_backend_cpu: illegal tile configuration", flush=True)
            os.kill(os.getpid(), signal.SIGSEGV)
        if mode == "fail":
            return self.reply(500, {"error": {"message": "model not loaded"}})
        self.reply(200, {"id": "x", "object": "chat.completion", "created": 0, "model": alias,
                         "choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": '{"correct": true}'}}],
                         "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}})
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""


class FakeLlamaServer(LocalLLMServer):
    def __init__(self, mode: str, **kwargs):
        super().__init__(model=Path("fake.gguf"), **kwargs)
        self.mode = mode

    def command(self) -> list[str]:
        return [sys.executable, "-c", FAKE_SERVER, str(self.port), self.alias, self.mode]


def test_a_server_that_lists_models_but_fails_completions_is_not_ready():
    server = FakeLlamaServer("fail", start_timeout_s=2.0)
    with pytest.raises(LLMServerError, match=r"was not ready within 2 s \(a completion failed with HTTP 500\)"):
        server.start()
    assert server.process is None  # stopped


def test_a_server_that_crashes_on_its_first_completion_reports_the_signal_and_what_to_do():
    started = time.perf_counter()
    with pytest.raises(LLMServerDied, match=r"(?s)was killed by SIGSEGV \(exit status 139\) while starting; "
                                            r"its log ends:.*illegal tile configuration.*rebuild it portably"):
        FakeLlamaServer("crash", start_timeout_s=30.0).start()
    assert time.perf_counter() - started < 10.0


def test_a_server_that_dies_mid_run_fails_the_request_at_once_without_retries(tmp_path):
    with FakeLlamaServer("crash-later") as server, ParentLLM(
            make_task("pattern_echo", A), llm_config(tmp_path / "c.sqlite", max_retries=3), server=server,
            backoff_s=5.0) as parent:
        started = time.perf_counter()
        with pytest.raises(LLMServerDied, match=r"(?s)killed by SIGSEGV.* during a verdict request.*rebuild it portably"):
            parent.reward(*echo_batch([2], [2]))
        assert time.perf_counter() - started < 4.0  # the first retry alone would wait 5 s
        assert parent.stats()["transport_errors"] == 1


def test_unreachable_base_url_names_it():
    url = f"http://127.0.0.1:{free_port()}/v1"
    with (ParentLLM(make_task("pattern_echo", A), llm_config(base_url=url, max_retries=1), backoff_s=0.01) as parent,
          pytest.raises(LLMError, match=rf"{url}: verdict request failed after 2 attempts: cannot connect")):
        parent.reward(*echo_batch([1], [1]))


def test_missing_api_key_names_the_variable(monkeypatch):
    monkeypatch.delenv("WMIL_TEST_NO_SUCH_KEY", raising=False)
    config = llm_config(base_url="https://api.example.com/v1", api_key_env="WMIL_TEST_NO_SUCH_KEY")
    with pytest.raises(LLMError, match="environment variable WMIL_TEST_NO_SUCH_KEY is not set"):
        ParentLLM(make_task("pattern_echo", A), config)


@pytest.mark.integration
def test_api_key_is_never_logged_or_cached(server, tmp_path, monkeypatch, caplog):
    secret = "sk-test-Zq8vN3sECRETkey0042"
    monkeypatch.setenv("WMIL_TEST_KEY", secret)
    # reached as a remote endpoint: json_schema first, refused by llama.cpp, then json_object
    config = llm_config(tmp_path / "cache.sqlite", base_url=server.base_url, api_key_env="WMIL_TEST_KEY")
    caplog.set_level("DEBUG")
    with ParentLLM(make_task("pattern_echo", A), config) as parent:
        parent.reward(*echo_batch([5, 6], [5, 0]))
        assert parent.endpoint.transport.json_schema is False and parent.stats()["invalid_responses"] == 0
        assert secret not in json.dumps(parent.stats()) and secret not in repr(parent)
    written = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert b'"correct"' in written and secret.encode() not in written
    assert "refused response_format json_schema" in caplog.text and "HTTP Response: POST 200" in caplog.text
    assert secret not in caplog.text


@pytest.mark.integration
def test_llm_audit_of_the_bundled_model_and_its_warm_rerun(tmp_path):
    """Every protocol against the real model on one problem per level: the layout, the score
    protocol's log-probabilities as llama.cpp's server returns them, and a warm rerun that sends
    nothing and writes the same bytes."""
    raw = yaml.safe_load(PARAMS_PATH.read_text())
    raw["llm_audit"].update(states_per_level=1, solve_states_per_level=1, protocols=["verdict", "solve", "score"])
    raw["defaults"]["parent"]["llm"]["cache_path"] = str(tmp_path / "cache.sqlite")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    audit = ["llm-audit", "--params", str(tmp_path / "params.yaml")]
    assert main([*audit, "--out", str(tmp_path / "cold.json"), "--timing", str(tmp_path / "timing.json")]) == 0
    cold = json.loads((tmp_path / "cold.json").read_text())
    for protocol in ("verdict", "solve", "score"):
        for levels in cold["protocols"][protocol]["by_task_level"].values():
            for block in levels.values():
                assert block["states"] == 1 and block["pairs"] == A and block["invalid_rate"] == 0.0
                assert sum(block["confusion"]["rule_right"].values()) == 1  # one right action per state
                assert -1.0 <= block["j"] <= 1.0 and block["prompt_tokens"] > 0
    timing = json.loads((tmp_path / "timing.json").read_text())
    assert all(t["sent_now"] > 0 for p in timing.values() for t in p.values())
    assert main([*audit, "--out", str(tmp_path / "warm.json"), "--timing", str(tmp_path / "warm-timing.json")]) == 0
    assert (tmp_path / "warm.json").read_bytes() == (tmp_path / "cold.json").read_bytes()
    warm = json.loads((tmp_path / "warm-timing.json").read_text())
    assert all(t["sent_now"] == 0 for p in warm.values() for t in p.values())


def test_cli_llm_error_exits_2(tmp_path, capsys):
    raw = yaml.safe_load(PARAMS_PATH.read_text())
    url = f"http://127.0.0.1:{free_port()}/v1"
    raw["defaults"]["parent"]["llm"].update(base_url=url, max_retries=0, cache_path="")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    assert main(["llm-audit", "--params", str(tmp_path / "params.yaml"), "--out", str(tmp_path / "a.json")]) == 2
    assert f"wmil llm-audit: error: {url}: program answer request failed" in capsys.readouterr().err
    assert not (tmp_path / "a.json").exists()


@pytest.mark.integration
def test_server_is_not_fooled_by_another_program_on_its_port():
    class Answers(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'{"object": "list", "data": [{"id": "someone-else"}]}')

        def log_message(self, *args):
            pass

    with http.server.HTTPServer(("127.0.0.1", 0), Answers) as other:
        threading.Thread(target=other.serve_forever, daemon=True).start()
        server = LocalLLMServer(port=other.server_address[1], start_timeout_s=60)
        try:
            with pytest.raises(LLMServerError, match="exited with code .* its log ends"):  # cannot bind
                server.start()
        finally:
            other.shutdown()
    assert server.process is None


def test_stop_when_the_group_ends_before_sigkill(tmp_path):
    server = LocalLLMServer(model=tmp_path / "unused.gguf")
    process = server.process = subprocess.Popen(["sleep", "60"], start_new_session=True)
    real_wait = process.wait

    def wait(timeout=None):
        if timeout is None:
            return real_wait()
        process.kill()  # SIGTERM "timed out", then the group ends before SIGKILL is sent
        real_wait()
        raise subprocess.TimeoutExpired(process.args, timeout)

    process.wait = wait
    server.stop()
    assert process.returncode is not None and server.process is None  # no ProcessLookupError


@pytest.mark.integration
def test_server_that_cannot_start_reports_its_log(tmp_path):
    bogus = tmp_path / "not-a-model.gguf"
    bogus.write_bytes(b"GGUF but not really")
    with pytest.raises(LLMServerError, match="exited with code .* its log ends"):
        LocalLLMServer(model=bogus, start_timeout_s=60).start()
    assert bundled(DEFAULT_MODEL).path().suffix == ".gguf" and bundled(DEFAULT_MODEL).path().stat().st_size > 10**7


@pytest.mark.integration
def test_two_real_training_jobs_share_one_cache_and_never_write_the_key(server, tmp_path):
    """Two `wmil train` processes with the LLM parent at once, reaching the bundled server as a
    remote endpoint with a key: one cache, no row lost or doubled, and the key nowhere on disk or in
    their output."""
    secret = "sk-test-Q7wRealRunSECRET99"
    cache = tmp_path / "cache.sqlite"
    env = {**os.environ, "WMIL_TEST_KEY": secret, "PYTHONPATH": str(PARAMS_PATH.parent)}
    common = [sys.executable, "-m", "wmil", "train", "--params", str(PARAMS_PATH), "--experiment", "llm_solve",
              "--max-steps", "500", "--no-progress", "--set", f"parent.llm.base_url={server.base_url}",
              "--set", "parent.llm.api_key_env=WMIL_TEST_KEY", "--set", f"parent.llm.cache_path={cache}"]
    jobs = [subprocess.Popen([*common, "--seed", str(seed), "--run-dir", str(tmp_path / f"run{seed}")], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for seed in (0, 1)]
    outputs = [job.communicate(timeout=300) for job in jobs]
    assert [job.returncode for job in jobs] == [0, 0], outputs
    rows = ResponseCache(cache)
    try:
        keys = [k for (k,) in rows._db.execute("SELECT key FROM responses")]
    finally:
        rows.close()
    assert len(keys) == len(set(keys)) == A  # solve: one row per target, shared by both runs
    stats = [json.loads((tmp_path / f"run{s}" / "parent_stats.json").read_text()) for s in (0, 1)]
    assert sum(s["requests"] for s in stats) >= A and all(s["invalid_responses"] == 0 for s in stats)
    written = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert secret.encode() not in written
    assert all(secret not in out + err for out, err in outputs)


@pytest.mark.integration
def test_the_bundled_coder_model_writes_pattern_echo_exactly_so_its_run_is_the_ppo_run(tmp_path):
    """The real Qwen2.5-Coder-1.5B (its file's hash checked at the server's start) writes the
    PatternEcho rule as code from the rule in words; an exact program makes the LLM-taught run
    the rule-taught one, bit for bit (this proves the program path is wired end to end)."""
    from wmil.training.trainer import Trainer

    params = load_params(PARAMS_PATH)
    steps = {"training": {"max_steps": 1024, "save_every": 512}}
    llm = params.run_config("llm", "pattern_echo", 1, {**steps, "parent": {"llm": {"cache_path": str(tmp_path / "c.sqlite")}}})
    assert (llm.parent.llm.protocol, llm.parent.llm.model) == ("program", "qwen2.5-coder-1.5b-instruct")
    Trainer(llm, tmp_path / "llm").train()
    Trainer(params.run_config("ppo", "pattern_echo", 1, steps), tmp_path / "rule").train()
    assert_same_run(tmp_path / "llm", tmp_path / "rule", ignore={"experiment"}, same_config=False)
    stats = json.loads((tmp_path / "llm" / "parent_stats.json").read_text())
    assert stats["requests"] == 1 and stats["fallbacks"] == 0

"""The baby model: shapes, the switchable world-model head, REINFORCE gradients, size, initial
policy and a short supervised check that it can represent PatternEcho's rule."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from wmil.envs import VectorEnv
from wmil.models import BabyModel
from wmil.parents import DeterministicParent
from wmil.tasks import TASKS, make_task
from wmil.training.algorithms import ALGORITHMS
from wmil.training.buffer import RolloutBuffer, discounted_returns
from wmil.training.reinforce import REINFORCE

TASK_NAMES = sorted(TASKS)
#: (task, experiment): every task on the shared defaults, plus the MVP experiment's task
CONFIGS = [(t, None) for t in TASK_NAMES] + [("pattern_echo", "mvp")]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def build(params, task_name, experiment=None, overrides=None, value_head=False, seed=0):
    config = params.run_config(experiment, task_name, overrides=overrides)
    task = make_task(task_name, config.env.num_actions, config.env.episode_length)
    torch.manual_seed(seed)
    return config, task, BabyModel(task, config.model, value_head=value_head)


def test_defaults_are_the_documented_ones(params):
    config = params.run_config(None, "pattern_echo")
    assert config.model.hidden_dim == 64
    assert config.env.num_actions == 16


@pytest.mark.parametrize("task_name", TASK_NAMES)
@pytest.mark.parametrize("n", [1, 7, 64])
@pytest.mark.parametrize("value_head", [False, True])
def test_forward_shapes(params, task_name, n, value_head):
    config, task, model = build(params, task_name, value_head=value_head)
    states = DeterministicParent(task).generate(2, n, gen(n))
    h, logits, value = model(states)
    d, A = config.model.hidden_dim, config.env.num_actions
    assert h.shape == (n, d) and h.dtype == torch.float32
    assert logits.shape == (n, A) and logits.dtype == torch.float32
    assert torch.isfinite(h).all() and torch.isfinite(logits).all()
    if value_head:
        assert value is not None and value.shape == (n,) and value.dtype == torch.float32
        assert model.value_head is not None
    else:
        assert value is None
        assert model.value_head is None
    assert torch.equal(model.get_state_embedding(states), h)


@pytest.mark.parametrize("task_name", TASK_NAMES)
@pytest.mark.parametrize("n", [1, 9])
def test_predict_next_state_shape(params, task_name, n):
    config, task, model = build(params, task_name)
    assert config.model.world_model is True
    assert model.world_model is not None
    states = DeterministicParent(task).generate(2, n, gen(0))
    actions = torch.randint(task.num_actions, (n,), generator=gen(1))
    h, _, _ = model(states)
    predicted = model.predict_next_state(h, actions)
    assert predicted.shape == (n, task.one_hot_dim) and predicted.dtype == torch.float32
    # the prediction depends on the action
    other = model.predict_next_state(h, (actions + 1) % task.num_actions)
    assert not torch.allclose(other, predicted)


@pytest.mark.parametrize("task_name", TASK_NAMES)
def test_world_model_disabled(params, task_name):
    config, task, model = build(params, task_name, overrides={"model": {"world_model": False}})
    assert config.model.world_model is False
    assert model.world_model is None
    states = DeterministicParent(task).generate(2, 4, gen(0))
    actions = torch.zeros(4, dtype=torch.long)
    h, logits, _ = model(states)
    assert logits.shape == (4, task.num_actions)
    with pytest.raises(RuntimeError, match=r"world-model head \(model.world_model: false\)"):
        model.predict_next_state(h, actions)
    # fewer parameters than with the head
    _, _, with_head = build(params, task_name)
    assert model.num_parameters() < with_head.num_parameters()


def rollout_batch(task, model, n=64, T=None, seed=0):
    """One rollout of whole episodes in the ``RolloutBuffer`` layout ``(T, N, ...)``: half the
    envs play the oracle action and half a random one, so returns are mixed."""
    T = task.episode_length if T is None else T
    env = VectorEnv(DeterministicParent(task), n, T, gen(seed))
    buf = RolloutBuffer(T, n, task.num_slots, task.num_actions)
    states = env.reset(2)
    g = gen(seed + 1)
    for t in range(T):
        with torch.no_grad():
            _, logits, value = model(states)
        oracle = task.answer(states)
        actions = torch.where(torch.arange(n) % 2 == 0, oracle, torch.randint(task.num_actions, (n,), generator=g))
        result = env.step(actions)
        buf.states[t], buf.next_states[t], buf.actions[t] = states, result.next_states, actions
        buf.log_probs[t] = F.log_softmax(logits, -1).gather(1, actions[:, None]).squeeze(1)
        if value is not None:
            buf.values[t] = value
        buf.goal[t] = buf.rewards[t] = result.goal
        buf.dones[t], buf.success[t] = result.done, result.success
        states = result.next_states
    assert 0 < float(buf.rewards.mean()) < 1  # mixed returns so the advantage is not zero
    return buf.batch()


def make_algorithm(name, model, config, task):
    return ALGORITHMS[name](model, config.algorithm, task, gen(123))


ALGORITHM_CONFIGS = [(t, e, "reinforce") for t, e in CONFIGS] + [(t, None, "ppo") for t in TASK_NAMES]


@pytest.mark.parametrize("task_name,experiment,algorithm", ALGORITHM_CONFIGS)
def test_update_reaches_every_parameter(params, task_name, experiment, algorithm):
    overrides = {"algorithm": {"name": algorithm}}
    config, task, model = build(params, task_name, experiment=experiment, overrides=overrides,
                                value_head=ALGORITHMS[algorithm].needs_value)
    assert (model.value_head is not None) == (algorithm == "ppo")
    algo = make_algorithm(algorithm, model, config, task)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    stats = algo.update(rollout_batch(task, model))
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert float(p.grad.abs().sum()) > 0, f"{name} got a zero gradient"
        assert not torch.equal(p.detach(), before[name]), f"{name} did not change"
    for key in ("policy_loss", "world_model_loss", "loss", "entropy", "grad_norm"):
        assert math.isfinite(stats[key]), key
    assert stats["world_model_loss"] > 0
    assert stats["grad_norm"] > 0


def test_reinforce_is_registered():
    assert ALGORITHMS["reinforce"] is REINFORCE
    assert REINFORCE.needs_value is False


@pytest.mark.parametrize("task_name", TASK_NAMES)
@pytest.mark.parametrize("T", [1, 3])
def test_reinforce_without_world_model(params, task_name, T):
    overrides = {"model": {"world_model": False}, "env": {"episode_length": T}}
    config, task, model = build(params, task_name, overrides=overrides)
    assert task.episode_length == T
    algo = make_algorithm("reinforce", model, config, task)
    stats = algo.update(rollout_batch(task, model))
    assert stats["world_model_loss"] == 0.0
    for name, p in model.named_parameters():
        assert p.grad is not None and float(p.grad.abs().sum()) > 0, name


@pytest.mark.parametrize("T", [1, 3])
def test_reinforce_baseline_is_bias_corrected(params, T):
    config, task, model = build(params, "pattern_echo", overrides={"env": {"episode_length": T}})
    algo = make_algorithm("reinforce", model, config, task)
    assert algo.baseline == 0.0
    batch = rollout_batch(task, model)
    mean_return = float(discounted_returns(batch.rewards, batch.dones, config.algorithm.gamma).mean())
    stats = algo.update(batch)
    # after one update the bias-corrected EMA equals the batch mean return exactly
    assert stats["baseline"] == pytest.approx(mean_return, rel=1e-6)
    state = algo.state_dict()
    algo2 = make_algorithm("reinforce", build(params, "pattern_echo")[2], config, task)
    algo2.load_state_dict(state)
    assert algo2.baseline == pytest.approx(algo.baseline)
    assert algo2.baseline_updates == 1


@pytest.mark.parametrize("task_name", TASK_NAMES)
@pytest.mark.parametrize("overrides", [None, {"model": {"world_model": False}}])
def test_parameter_count_default_below_one_million(params, task_name, overrides):
    _, _, model = build(params, task_name, overrides=overrides)
    count = model.num_parameters()
    assert count == sum(p.numel() for p in model.parameters())
    assert 0 < count < 1_000_000


def test_parameter_count_mvp(params):
    for task_name in params.experiments["mvp"].tasks:
        _, _, model = build(params, task_name, experiment="mvp")
        assert 20_000 <= model.num_parameters() <= 200_000, model.num_parameters()


@pytest.mark.parametrize("task_name,experiment", CONFIGS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_initial_policy_near_uniform(params, task_name, seed, experiment):
    config, task, model = build(params, task_name, experiment=experiment, seed=seed)
    states = DeterministicParent(task).generate(2, 256, gen(seed))
    with torch.no_grad():
        _, logits, _ = model(states)
    log_probs = F.log_softmax(logits, -1)
    entropy = -(log_probs.exp() * log_probs).sum(-1)
    max_entropy = math.log(config.env.num_actions)
    assert bool((entropy >= 0.99 * max_entropy).all()), float(entropy.min())
    assert bool((entropy <= max_entropy + 1e-5).all())


def test_same_seed_same_initialisation(params):
    _, task, a = build(params, "conditional", seed=5)
    _, _, b = build(params, "conditional", seed=5)
    _, _, c = build(params, "conditional", seed=6)
    states = DeterministicParent(task).generate(2, 16, gen(0))
    with torch.no_grad():
        assert torch.equal(a(states)[1], b(states)[1])
        assert not torch.equal(a(states)[1], c(states)[1])


@pytest.mark.parametrize("experiment,seed", [(None, 0), ("mvp", 1)])
def test_supervised_pattern_echo_reaches_full_accuracy(params, experiment, seed):
    """Cross-entropy on the action head: the architecture can represent the echo rule, also
    when the last-action / feedback slots hold distracting values."""
    config, task, model = build(params, "pattern_echo", experiment=experiment, seed=seed)
    parent = DeterministicParent(task)
    A = task.num_actions
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = gen(seed)
    for _ in range(200):
        states = parent.generate(2, 32, g)
        acted = parent.transition(states, torch.randint(A, (32,), generator=g))
        batch = torch.cat([states, acted])
        _, logits, _ = model(batch)
        loss = F.cross_entropy(logits, task.answer(batch))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    table = task.initial_states(task.problems(2))
    every_action = torch.arange(A).repeat_interleave(len(table))
    evaluation = torch.cat([table, parent.transition(table.repeat(A, 1), every_action)])
    with torch.no_grad():
        _, logits, _ = model(evaluation)
    accuracy = float((logits.argmax(-1) == task.answer(evaluation)).float().mean())
    assert accuracy == 1.0


def test_the_embedding_target_is_a_moving_average_copy_that_takes_no_gradient(params):
    """SPR/BYOL's set-up: the target starts as the online encoder and core, gets no gradient and
    moves by ``target <- ema * target + (1 - ema) * online``; the model's size leaves it out."""
    config, task, model = build(params, "sequence_next", "ppo", overrides={"model": {"world_model_target": "embedding"}},
                                value_head=True)
    _, _, raw = build(params, "sequence_next", "ppo", value_head=True)
    online = dict(model.named_parameters())
    for name, p in raw.named_parameters():  # built last: every other initial weight is the raw model's
        assert torch.equal(online[name], p), name
    assert model.num_parameters() == raw.num_parameters() + sum(p.numel() for p in model.embedding_predictor.parameters())
    assert all(not n.startswith("target_") for n, p in model.named_parameters() if p.requires_grad)
    for (_, t), (_, o) in zip(model.target_transformer.named_parameters(), model.transformer.named_parameters()):
        assert torch.equal(t, o) and not t.requires_grad
    assert not model.predicts_embeddings and "embedding_target_on" in model.state_dict()

    states = DeterministicParent(task).generate(2, 6, gen(0))
    actions = torch.randint(task.num_actions, (6,), generator=gen(1))
    next_states = DeterministicParent(task).generate(2, 6, gen(2))
    h, _, _ = model(states)
    error = model.embedding_prediction_error(h, actions, next_states)
    assert error.shape == (6,) and bool(((error >= 0) & (error <= 4 / config.model.hidden_dim + 1e-6)).all())
    error.mean().backward()
    assert all(p.grad is None for n, p in model.named_parameters() if n.startswith("target_"))
    assert model.embedding_predictor.predictor[0].weight.grad.abs().sum() > 0
    assert model.encoder.value_embed.weight.grad.abs().sum() > 0  # the representation learns from it

    with torch.no_grad():
        for p in model.encoder.parameters():
            p.add_(1.0)
    before = [t.clone() for t in model.target_encoder.parameters()]
    model.update_target(0.75)
    for b, t, o in zip(before, model.target_encoder.parameters(), model.encoder.parameters()):
        torch.testing.assert_close(t, 0.75 * b + 0.25 * o)
    raw.update_target(0.75)  # no target: nothing to move, no error


@pytest.mark.parametrize("task_name", TASK_NAMES)
def test_the_answer_head_predicts_the_next_problem_from_the_state_alone(params, task_name):
    """The answer-head control: no action input, the problem slots only, and its error, loss and
    (absent) consistency reward read those columns alone."""
    from wmil.training.rewards import RewardComputer, prediction_mse

    # the experiments' settings on every task of the registry, listed in them or not
    config, task, model = build(params, task_name, overrides=params.experiments["answer_head"].overrides)
    width = int(task.slot_offsets[task.num_problem_slots])
    assert model.world_model.action_embed is None and width < task.one_hot_dim
    parent = DeterministicParent(task)
    states = parent.generate(2, 6, gen(0))
    h, _, _ = model(states)
    first, second = torch.zeros(6, dtype=torch.long), torch.full((6,), 3)
    predicted = model.predict_next_state(h, first)
    assert predicted.shape == (6, width) and torch.equal(predicted, model.predict_next_state(h, second))
    _, next_states = parent.step(states, first)
    expected = ((predicted - task.one_hot(next_states)[:, :width]) ** 2).mean(-1)
    assert torch.allclose(prediction_mse(task, predicted, next_states), expected)
    rewards = RewardComputer(config.rewards, task).compute(torch.ones(6), predicted, next_states)[0]
    assert torch.equal(rewards.cons, torch.zeros(6))  # it predicts no feedback slot
    # the dynamics head of the same task predicts every slot from the state and the action
    _, _, dynamics = build(params, task_name, overrides=params.experiments["ppo"].overrides)
    assert dynamics.world_model.action_embed is not None and dynamics.predict_next_state(h, first).shape == (6, task.one_hot_dim)


@pytest.mark.parametrize("experiment,encoder_learns", [("ppo", True), ("detached_head", False), ("answer_head", True)])
def test_a_detached_world_model_head_learns_but_shapes_no_feature(params, experiment, encoder_learns):
    """With model.world_model_detached the world-model loss trains its head and sends no gradient
    into the encoder and core the policy reads; otherwise it does."""
    from wmil.training.auxiliary import add_auxiliary_losses

    config, task, model = build(params, "sequence_next", experiment)
    states = DeterministicParent(task).generate(2, 16, gen(1))
    actions = torch.randint(task.num_actions, (16,), generator=gen(2))
    next_states = DeterministicParent(task).step(states, actions)[1]
    h, logits, _ = model(states)
    aux = add_auxiliary_losses(torch.zeros(()), model, config.algorithm, task, h, F.log_softmax(logits, -1), actions,
                               next_states, None)
    aux.loss.backward()
    head = [p.grad for p in model.world_model.parameters()]
    shared = [p.grad for p in [*model.encoder.parameters(), *model.transformer.parameters()]]
    assert aux.world_model > 0 and all(g is not None and g.abs().sum() > 0 for g in head)
    assert any(g is not None and g.abs().sum() > 0 for g in shared) == encoder_learns

"""Does the world-model head give better representations? Probes, clusters and maps of the
state embeddings of a model on a fixed grid of states.

The grid is small (tens to a few hundred states), so every analysis runs in seconds on a CPU. Two
references put a trained model's numbers in context: the raw one-hot states (what any encoder
could at best preserve linearly) and a randomly initialised model of the same architecture.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression
from sklearn.manifold import TSNE
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from wmil import layout
from wmil.config import ModelConfig, Params
from wmil.evaluation.held_out import load_model
from wmil.models.baby import BabyModel
from wmil.parents.deterministic import DeterministicParent
from wmil.tasks.rules import NUM_LEVELS, Task, make_task

PROBE_MAX_ITER = 5000  # lbfgs on a few hundred standardised points converges well within this
KMEANS_N_INIT = 10
MAX_PERPLEXITY = 30.0  # sklearn's default, for grids large enough to afford it


def state_grid(task: Task) -> tuple[torch.Tensor, dict[str, np.ndarray]]:
    """Every problem of every level with no action taken, and the states after answering it once
    right and once wrong (the wrong action is the right one + 1 modulo ``A``), as the rule-based
    parent makes them. Identical states are kept once, at their first occurrence in that order,
    so ``level`` is the easiest level whose problems (or their successors) include the state.

    Returns ``states`` ``LongTensor (n, num_slots)`` and labels, each ``int64 (n,)``: ``level``,
    ``answer`` (the rule's correct action in that state), ``feedback`` and one per problem slot,
    named by the slot.
    """
    parent = DeterministicParent(task)
    blocks, levels = [], []
    for level in range(NUM_LEVELS):
        fresh = task.initial_states(task.problems(level))
        right = task.answer(fresh)
        wrong = (right + 1) % task.num_actions
        for states in (fresh, parent.step(fresh, right)[1], parent.step(fresh, wrong)[1]):
            blocks.append(states)
            levels.append(torch.full((len(states),), level))
    every, every_level = torch.cat(blocks), torch.cat(levels)
    _, first = np.unique(every.numpy(), axis=0, return_index=True)
    keep = torch.from_numpy(np.sort(first))
    states = every[keep]
    labels = {
        "level": every_level[keep].numpy(),
        "answer": task.answer(states).numpy(),
        "feedback": states[:, task.feedback_slot].numpy(),
        **{slot.name: states[:, i].numpy() for i, slot in enumerate(task.problem_slots)},
    }
    return states, labels


def embed(model: BabyModel, states: torch.Tensor) -> np.ndarray:
    """State embeddings ``float32 (n, hidden_dim)`` of ``states`` ``LongTensor (n, num_slots)``."""
    with torch.inference_mode():
        return model.get_state_embedding(states).numpy()


def _informative(y: np.ndarray) -> bool:
    """A label can be probed or clustered if it has at least two classes and is not unique per
    state (then a held-out point's class is never seen in training and silhouette is undefined)."""
    return 2 <= len(np.unique(y)) < len(y)


def _check_xy(X: np.ndarray, y: np.ndarray) -> None:
    if X.ndim != 2 or y.ndim != 1 or len(X) != len(y):
        raise ValueError(f"X, y: expected X (n, d) and y (n,) with equal n, got {X.shape} and {y.shape}")


def probe_accuracy(X: np.ndarray, y: np.ndarray, seed: int, test_fraction: float = 0.3) -> dict[str, float] | None:
    """Held-out accuracy of a linear probe: multinomial logistic regression on standardised
    features ``X`` ``(n, d)`` predicting labels ``y`` ``(n,)``.

    The split is stratified by ``y`` when every class has at least two members, so that the probe
    is tested on classes it was trained on; the test part then grows to one point per class if
    ``test_fraction`` is too small to hold every class (the grids have few states per class).
    Otherwise it is a plain random split of ``test_fraction``. Returns ``{"accuracy", "chance"}``
    with chance the majority-class rate of the test split, or None when ``y`` has a single class,
    is unique per point, or a plain split leaves the training part a single class.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction={test_fraction!r}: expected a fraction in (0, 1)")
    X, y = np.asarray(X), np.asarray(y)
    _check_xy(X, y)
    if not _informative(y):
        return None
    classes, counts = np.unique(y, return_counts=True)
    # sklearn rounds a fractional test size up; both parts of a stratified split need every class.
    n_test = max(int(np.ceil(test_fraction * len(y))), len(classes))
    stratify = counts.min() >= 2 and len(y) - n_test >= len(classes)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=n_test if stratify else test_fraction, random_state=seed, stratify=y if stratify else None)
    if len(np.unique(y_train)) < 2:
        return None
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=PROBE_MAX_ITER))
    probe.fit(X_train, y_train)
    _, test_counts = np.unique(y_test, return_counts=True)
    return {"accuracy": float(probe.score(X_test, y_test)), "chance": float(test_counts.max() / len(y_test))}


def cluster_scores(X: np.ndarray, y: np.ndarray, seed: int) -> dict[str, float] | None:
    """How well the embedding ``X`` ``(n, d)`` separates the classes of ``y`` ``(n,)``.

    ``ari``: adjusted Rand index between k-means clusters (k = number of classes) and ``y``; 1 for
    a perfect match, about 0 for chance. ``silhouette``: silhouette of ``X`` under the true labels,
    in ``[-1, 1]``. Returns None when ``y`` has a single class or is unique per point.
    """
    X, y = np.asarray(X), np.asarray(y)
    _check_xy(X, y)
    if not _informative(y):
        return None
    k = len(np.unique(y))
    clusters = KMeans(n_clusters=k, n_init=KMEANS_N_INIT, random_state=seed).fit_predict(X)
    return {"ari": float(adjusted_rand_score(y, clusters)), "silhouette": float(silhouette_score(X, y))}


def tsne_map(X: np.ndarray, seed: int) -> np.ndarray:
    """2-D t-SNE map ``(n, 2)`` of ``X`` ``(n, d)``, PCA-initialised. The perplexity is sklearn's
    default 30 where ``n`` allows, else ``(n - 1) / 3`` (it must stay below ``n``)."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or len(X) < 4:
        raise ValueError(f"X: expected (n, d) with at least 4 points, got shape {X.shape}")
    perplexity = min(MAX_PERPLEXITY, (len(X) - 1) / 3)
    return TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto",
                random_state=seed).fit_transform(X)


def analyze_embeddings(X: np.ndarray, labels: dict[str, np.ndarray], seed: int) -> dict[str, Any]:
    """Probes, cluster scores and a t-SNE map of embeddings ``X`` ``(n, d)`` with ``labels``
    ``{attribute: (n,)}``. Attributes that cannot be probed (see :func:`probe_accuracy`) are left out
    of ``probes`` and ``clusters``; every attribute is in ``tsne.labels``."""
    probes = {name: probe_accuracy(X, y, seed) for name, y in labels.items()}
    clusters = {name: cluster_scores(X, y, seed) for name, y in labels.items()}
    xy = tsne_map(X, seed)
    return {
        "n_states": len(X),
        "probes": {k: v for k, v in probes.items() if v is not None},
        "clusters": {k: v for k, v in clusters.items() if v is not None},
        "tsne": {"x": xy[:, 0].tolist(), "y": xy[:, 1].tolist(),
                 "labels": {name: y.tolist() for name, y in labels.items()}},
    }


def analyze_model(model_path: Path, seed: int) -> dict[str, Any]:
    """Representation analysis of a trained run's ``model.pt`` on the task's :func:`state_grid`.

    Returns (JSON-able) ``{"source": "trained", "task", "experiment", "run_seed", "world_model",
    "n_states", "probes": {attribute: {"accuracy", "chance"}}, "clusters": {attribute: {"ari",
    "silhouette"}}, "tsne": {"x": [n], "y": [n], "labels": {attribute: [n]}}}``.
    """
    config, task, model = load_model(Path(model_path))
    states, labels = state_grid(task)
    return {"source": "trained", "task": task.name, "experiment": config.experiment, "run_seed": config.seed,
            "world_model": config.model.world_model, **analyze_embeddings(embed(model, states), labels, seed)}


def analyze_raw(task: Task, seed: int) -> dict[str, Any]:
    """Reference: the same analysis on the raw one-hot states ``(n, one_hot_dim)``. Layout as
    :func:`analyze_model` with ``source`` "raw" and None for the run-specific fields."""
    states, labels = state_grid(task)
    return {"source": "raw", "task": task.name, "experiment": None, "run_seed": None, "world_model": None,
            **analyze_embeddings(task.one_hot(states).numpy(), labels, seed)}


def analyze_untrained(task: Task, model_config: ModelConfig, seed: int) -> dict[str, Any]:
    """Reference: the same analysis on a model initialised with torch seed ``seed`` and never
    trained. Layout as :func:`analyze_model` with ``source`` "untrained"."""
    with torch.random.fork_rng(devices=[]):  # leave the caller's torch generator untouched
        torch.manual_seed(seed)
        model = BabyModel(task, model_config)
    states, labels = state_grid(task)
    return {"source": "untrained", "task": task.name, "experiment": None, "run_seed": None,
            "world_model": model_config.world_model, **analyze_embeddings(embed(model, states), labels, seed)}


def analyze_task(params: Params, task_name: str, runs_root: Path) -> dict[str, Any]:
    """``wmil analyze``: every seed of each experiment in ``evaluation.representation`` on
    ``task_name``, beside the raw-state and untrained-model references (built with the first
    experiment's model settings). Returns ``{"task", "runs": {experiment: [per-seed analysis]},
    "references": {"raw": ..., "untrained": ...}}``."""
    ev = params.evaluation
    runs: dict[str, list[dict[str, Any]]] = {}
    for name in ev.representation:
        if task_name not in params.experiments[name].tasks:
            continue
        runs[name] = []
        for seed in params.seeds_of(name):
            path = layout.run_dir(name, task_name, seed, runs_root) / "model.pt"
            if not path.exists():
                raise FileNotFoundError(f"{path}: missing (run not finished)")
            runs[name].append(analyze_model(path, ev.seed))
    if not runs:
        raise ValueError(f"task {task_name!r}: none of evaluation.representation {list(ev.representation)} runs it")
    config = params.run_config(next(iter(runs)), task_name)
    task = make_task(task_name, config.env.num_actions, config.env.episode_length)
    return {"task": task_name, "runs": runs, "references": {
        "raw": analyze_raw(task, ev.seed), "untrained": analyze_untrained(task, config.model, ev.seed)}}

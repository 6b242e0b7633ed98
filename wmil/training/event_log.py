"""TensorBoard scalars of a run, namespaced like CleanRL's (``charts/``, ``losses/``, ``reward/``,
``time/``), so that ``tensorboard --logdir results/runs`` shows every run.

``curve.csv`` stays the source of truth: the event files are rewritten from it (and from the
timing rows) at every checkpoint and at the end, so a resumed run never logs a step twice. They
carry wall-clock times, so they are kept out of every metric and hash (``.dvcignore``).
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

EVENTS_DIR = "tensorboard"
#: Curve column -> TensorBoard tag.
TAGS = {
    "success_rate": "charts/success_rate", "rolling_success": "charts/rolling_success",
    "rolling_success_top": "charts/rolling_success_full_task", "level": "charts/level",
    "episodes": "charts/episodes", "learning_rate": "charts/learning_rate", "entropy": "charts/entropy",
    "reward_goal": "reward/goal", "reward_pred": "reward/pred", "reward_cons": "reward/cons",
    "reward_total": "reward/total",
    "world_model_mse": "losses/world_model_mse", "policy_loss": "losses/policy_loss",
    "world_model_loss": "losses/world_model_loss", "loss": "losses/loss", "grad_norm": "losses/grad_norm",
    "embedding_loss": "losses/embedding_loss", "distill_loss": "losses/distill_loss", "value_loss": "losses/value_loss",
    "approx_kl": "losses/approx_kl",
    "clip_frac": "losses/clipfrac", "explained_variance": "losses/explained_variance",
    "steps_per_s": "time/steps_per_s",
}


def write_events(run_dir: Path, curve: list[dict[str, float]], rates: list[dict[str, float]]) -> None:
    """Replace ``run_dir/tensorboard`` by the scalars of ``curve`` rows and ``rates`` rows (each
    at its ``env_steps``); NaN values (a column an algorithm does not have) are skipped."""
    from torch.utils.tensorboard import SummaryWriter  # loads tensorboard only when a run logs

    final = Path(run_dir) / EVENTS_DIR
    tmp = final.with_name(f".{EVENTS_DIR}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    writer = SummaryWriter(str(tmp))
    try:
        for row in [*curve, *rates]:
            step = int(row["env_steps"])
            for column, value in row.items():
                if column in TAGS and value is not None and not math.isnan(float(value)):
                    writer.add_scalar(TAGS[column], float(value), step)
    finally:
        writer.close()
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)

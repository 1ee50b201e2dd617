"""The report's section for a study over several scenes (datasets): results per scene and pooled over scenes, and
what one novel image cost, end to end, on each scene.

Pooled means weigh every finished trial equally; their interval is over those trials, so it holds scene-to-scene
spread as well as seed noise. The end-to-end cost of a scene adds the seconds `nerftune prepare` took (from the
scene's `prepare_report.json`, where it made the dataset), the device-seconds of its trials and those of its novel
views rendered after the sweep, and divides by the number of novel views.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from nerftune.data.dataset import PREPARE_REPORT
from nerftune.report import stats
from nerftune.report.data import SweepData
from nerftune.report.page import Section, csv_table
from nerftune.spec import SCENE, value_text


def scenes_section(sweep: SweepData, final: pd.DataFrame, gpu_share: float, out: Path) -> Section | None:
    if SCENE not in sweep.dimensions:
        return None
    metric = sweep.spec.metric.name
    section = Section("Scenes")
    section.notes.append(
        f"{final[SCENE].nunique() if len(final) else 0} of {len(sweep.spec.space[SCENE].choices)} scenes have "
        "finished trials. Per scene: the replicate mean of each configuration; pooled: over every scene's "
        "trials of the same settings (its interval holds scene-to-scene spread and seed noise)."
    )
    if len(final):
        others = [d for d in sweep.dimensions if d != SCENE]
        per_scene = stats.seed_table(final, sweep.dimensions, metric).drop(columns="configuration")
        section.tables.append(csv_table(per_scene, "scenes.csv", out))
        section.tables.append(csv_table(pooled(final, others, metric), "scenes_pooled.csv", out))
    section.tables.append(csv_table(end_to_end_cost(sweep, gpu_share), "scenes_cost.csv", out))
    return section


def pooled(final: pd.DataFrame, others: list[str], metric: str) -> pd.DataFrame:
    """Per setting of the dimensions other than scene (and replicate): n trials, scenes, mean, interval, and the
    lowest and highest scene mean."""
    keys = final.assign(**{name: final[name].map(_hashable) for name in others})
    rows = []
    for _, group in keys.groupby(others, sort=True) if others else [(None, keys)]:
        trials = final.loc[group.index]
        values = trials[metric].dropna().to_numpy(dtype=float)
        mean, low, high = stats.interval(values, metric)
        scene_means = trials.groupby(SCENE)[metric].mean()
        rows.append(
            {
                **{name: trials[name].iloc[0] for name in others},
                "scenes": trials[SCENE].nunique(),
                "n": len(values),
                "mean": mean,
                "ci_low": low,
                "ci_high": high,
                "worst_scene_mean": scene_means.min(),
                "best_scene_mean": scene_means.max(),
            }
        )
    return pd.DataFrame(rows)


def end_to_end_cost(sweep: SweepData, gpu_share: float) -> pd.DataFrame:
    """Per scene: prepare seconds, trials' device-seconds, render seconds, novel views, and seconds per view."""
    trials, spec = sweep.trials, sweep.spec
    device_s = stats.device_seconds(trials, spec.resources.cpu, gpu_share) if len(trials) else pd.Series(dtype=float)
    renders = sweep.renders.merge(trials[["trial_id", SCENE]], on="trial_id") if len(trials) else sweep.renders
    # renders made inside a trial (`render: {trials: each}`) are in its wall time already
    after_sweep = spec.render is not None and spec.render.trials == "best"
    rows = []
    for name in spec.space[SCENE].choices:
        mine = trials[SCENE] == name if len(trials) else pd.Series(dtype=bool)
        views = renders[renders[SCENE] == name] if len(renders) else renders
        render_s = float((views.views / views.fps.clip(lower=1e-9)).sum()) if after_sweep and len(views) else 0.0
        prepare_s = prepare_seconds(sweep.state, name)
        total = (prepare_s or 0.0) + float(device_s[mine].sum()) + render_s
        count = int(views.views.sum()) if len(views) else 0
        rows.append(
            {
                SCENE: name,
                "prepare_s": prepare_s,
                "trials": int(mine.sum()),
                "training_device_s": float(device_s[mine].sum()),
                "render_s": render_s,
                "novel_views": count,
                "device_s_per_novel_view": total / count if count else math.nan,
            }
        )
    return pd.DataFrame(rows)


def prepare_seconds(state: dict, scene: str) -> float | None:
    """What `nerftune prepare` spent making the scene's dataset (None: it did not make it, e.g. a synthetic one)."""
    data_dir = state.get("scenes", {}).get(scene, {}).get("data_dir")
    try:
        report = json.loads((Path(data_dir) / PREPARE_REPORT).read_text()) if data_dir else None
    except (OSError, ValueError):
        return None
    return float(sum(report.get("seconds", {}).values())) if report else None


def _hashable(value):
    """Lists and mappings (nerfstudio values) group by their JSON text; numbers keep their order."""
    return value_text(value) if isinstance(value, (list, dict)) else value

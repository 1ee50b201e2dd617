"""Which searched parameters matter: Optuna's fANOVA importance over configuration means, each effect set against
the seed-noise floor so that a parameter whose effect is smaller than seed noise is not called important."""

from __future__ import annotations

import logging
import math
import warnings
from typing import Sequence

import optuna
import pandas as pd

from nerftune.report.stats import effect_sizes
from nerftune.spec import SweepSpec, value_text

MIN_CONFIGURATIONS = 3


def importance_table(seeds: pd.DataFrame, spec: SweepSpec, noise_floor: float) -> tuple[pd.DataFrame, str]:
    """Per searched parameter: fANOVA importance (shares summing to 1), its effect in metric units, and whether
    that effect stands above the noise floor; with a line on how it was computed (or why not)."""
    dimensions = [name for name in spec.configuration_space if seeds[name].nunique() > 1] if len(seeds) else []
    scored = seeds.dropna(subset=["mean"]) if "mean" in seeds else seeds  # no trial completed: no means at all
    if len(scored) < MIN_CONFIGURATIONS or not dimensions:
        return pd.DataFrame(columns=["parameter", "importance", "effect", "above_noise"]), (
            f"needs at least {MIN_CONFIGURATIONS} configurations that completed and a parameter that varies"
        )
    optuna.logging.set_verbosity(logging.WARNING)
    study = _study_of(scored, dimensions, spec.metric.mode)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        shares = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0), normalize=True
        )
    effects = effect_sizes(scored, dimensions)
    rows = [
        {
            "parameter": name,
            "importance": shares.get(name, 0.0),
            "effect": effects[name],
            "above_noise": bool(effects[name] > noise_floor) if math.isfinite(noise_floor) else None,
        }
        for name in dimensions
    ]
    table = pd.DataFrame(rows).sort_values("importance", ascending=False, kind="stable")
    how = (
        f"fANOVA (Optuna) over {len(scored)} configuration means; effect = spread of the mean over the parameter's "
        "values; "
        + (
            f"noise floor = pooled replicate std {noise_floor:.3g}"
            if math.isfinite(noise_floor)
            else "no replicates, so no noise floor: effects cannot be told from seed noise"
        )
    )
    return table, how


def _study_of(seeds: pd.DataFrame, dimensions: Sequence[str], mode: str) -> optuna.Study:
    study = optuna.create_study(direction="maximize" if mode == "max" else "minimize")
    distributions = {}
    for name in dimensions:
        values = seeds[name]
        if pd.api.types.is_numeric_dtype(values) and values.nunique() > 1:
            distributions[name] = optuna.distributions.FloatDistribution(float(values.min()), float(values.max()))
        else:
            distributions[name] = optuna.distributions.CategoricalDistribution(sorted(set(map(value_text, values))))
    for _, row in seeds.iterrows():
        params = {
            name: float(row[name]) if isinstance(d, optuna.distributions.FloatDistribution) else value_text(row[name])
            for name, d in distributions.items()
        }
        study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, value=row["mean"]))
    return study

"""How much the seed matters at each level (`report/noise.py`), on tables worked out by hand."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from nerftune.report import stats
from nerftune.report.data import SweepData
from nerftune.report.noise import bartlett_p, noise_by_level, noise_lines
from nerftune.spec import parse_spec


def _seeds(rows: list[tuple]) -> pd.DataFrame:
    """(configuration, frames, replicate values) -> the final table `stats.seed_table` reads."""
    return pd.DataFrame([{"configuration": c, "frames": f, "psnr": v} for c, f, values in rows for v in values])


def test_a_levels_noise_pools_its_configurations_and_has_a_chi_square_interval():
    # 6 frames: two configurations of 2 seeds, sds 1 and 3: pooled variance (1 + 9) / 2, 2 degrees of freedom
    final = _seeds(
        [(0, 6, [20, 20 + math.sqrt(2)]), (1, 6, [21, 21 + 3 * math.sqrt(2)]), (2, 12, [24, 25, 26, 27, 28])]
    )
    table = noise_by_level(stats.seed_table(final, ["frames"], "psnr"), ["frames"]).set_index("level")
    assert table.loc[6, "std"] == pytest.approx(math.sqrt(5)) and table.loc[6, "dof"] == 2
    assert table.loc[6, "configurations"] == 2
    sd12 = np.std([24, 25, 26, 27, 28], ddof=1)
    assert table.loc[12, "ci_low"] == pytest.approx(sd12 * math.sqrt(4 / scipy_stats.chi2.ppf(0.975, 4)))
    assert table.loc[12, "ci_high"] == pytest.approx(sd12 * math.sqrt(4 / scipy_stats.chi2.ppf(0.025, 4)))


def test_bartlett_from_pooled_variances_is_scipys_on_the_samples():
    samples = [[20.0, 21.5, 19.0], [24.0, 24.2, 23.9, 24.1], [30.0, 26.0]]
    final = _seeds([(i, f, values) for i, (f, values) in enumerate(zip([6, 12, 24], samples))])
    table = noise_by_level(stats.seed_table(final, ["frames"], "psnr"), ["frames"])
    assert bartlett_p(table) == pytest.approx(scipy_stats.bartlett(*samples).pvalue)
    line = noise_lines(table, "psnr", "seed noise")[0]
    assert line.startswith("The seed noise by frames (psnr sd, 95 % interval): 6: 1.3 (")
    assert f"Bartlett's p {scipy_stats.bartlett(*samples).pvalue:.2g}" in line


def test_a_dimension_with_one_level_of_replicates_has_no_comparison():
    final = _seeds([(0, 6, [20, 21]), (1, 12, [24])])
    assert not len(noise_by_level(stats.seed_table(final, ["frames"], "psnr"), ["frames"]))


def test_the_seed_section_says_how_the_noise_varies_with_frames(tmp_path):
    from nerftune.report.sections import seed_section

    spec = parse_spec(
        "name: s\ndata: synthetic:id-card\nspace: {frames: [6, 12], seed: [0, 1, 2], steps: 10}\nreplicates: seed\n"
    )
    final = _seeds([(0, 6, [18.0, 21.0, 24.0]), (1, 12, [24.0, 24.1, 24.2])])
    seeds = stats.seed_table(final, ["frames"], "psnr")
    sweep = SweepData(tmp_path, spec, {}, final, pd.DataFrame(), pd.DataFrame())
    notes = " ".join(seed_section(sweep, seeds, stats.pooled_std(seeds), tmp_path).notes)
    assert "The seed noise by frames (psnr sd, 95 % interval): 6: 3 (" in notes and "(a difference)" in notes
    assert pd.read_csv(tmp_path / "noise_by_level.csv").level.tolist() == [6, 12]
    # a searched range has a level per configuration: its noise by level would be each configuration's again
    ranged = parse_spec(
        "name: s\ndata: synthetic:id-card\nspace: {frames: [6, 12], seed: [0, 1, 2], steps: 10,\n"
        "  pipeline.model.hidden_dim: {type: int, min: 16, max: 64}}\nreplicates: seed\n"
    )
    final = final.assign(**{"pipeline.model.hidden_dim": [16] * 3 + [48] * 3})
    seeds = stats.seed_table(final, ["frames", "pipeline.model.hidden_dim"], "psnr")
    sweep = SweepData(tmp_path, ranged, {}, final, pd.DataFrame(), pd.DataFrame())
    seed_section(sweep, seeds, stats.pooled_std(seeds), tmp_path)
    assert set(pd.read_csv(tmp_path / "noise_by_level.csv").dimension) == {"frames"}

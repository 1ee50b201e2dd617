"""`nerftune report` on real sweeps: the files, numbers that match results.csv, the page in a real browser, MLflow,
partial sweeps, sweeps without replicates, and bad input."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from conftest import LR, nerftune_command

pytestmark = pytest.mark.slow

FILES = (
    "index.html",
    "trials.csv",
    "curves.csv",
    "learning_curves.png",
    "psnr_by_frames.png",
    "ssim_by_frames.png",
    "by_frames.csv",
    "compare_frames.csv",
    "enough_frames.csv",
    "seeds.csv",
    "timing.csv",
    "cost_per_configuration.csv",
    "cost_per_trial.csv",
    "pareto.csv",
    "pareto.png",
    "provenance.csv",
    "psnr_by_novelty.png",
    "psnr_by_novelty.csv",
)


def test_every_sweep_ends_with_its_report(study_sweep):
    report = study_sweep.folder / "report"
    for name in FILES:
        assert (report / name).is_file() and (report / name).stat().st_size > 0, name
    assert f"report: {report / 'index.html'}" in study_sweep.result.stdout


def test_the_report_tables_hold_what_results_csv_says(study_sweep):
    report, table = study_sweep.folder / "report", study_sweep.table
    final = table[table.stop_reason == "completed"]
    seeds = pd.read_csv(report / "seeds.csv").set_index("configuration")
    for configuration, replicates in final.groupby("configuration"):
        row = seeds.loc[configuration]
        assert row.n == len(replicates) == 2
        assert row["mean"] == pytest.approx(replicates.final_psnr.mean())
        assert row["std"] == pytest.approx(replicates.final_psnr.std(ddof=1))
        assert row.ci_low < row["mean"] < row.ci_high
    by_frames = pd.read_csv(report / "by_frames.csv")
    psnr = by_frames[by_frames.metric == "psnr"]
    per_rate = psnr[psnr[LR].astype(str) != "(best per level)"].set_index("frames")
    best = psnr[psnr[LR].astype(str) == "(best per level)"].set_index("frames")
    for frames, group in final.groupby("frames"):
        # one configuration completes per frame count (the frozen one is stopped): it is also the level's best
        assert per_rate.loc[frames, "mean"] == pytest.approx(group.final_psnr.mean())
        assert best.loc[frames, "mean"] == pytest.approx(group.final_psnr.mean())
    # how many frames are enough: 3 frames against 12, the most, per learning rate and per level's best
    enough = pd.read_csv(report / "enough_frames.csv")
    enough_best = enough[enough[LR].astype(str) == "(best per level)"].set_index("frames")
    assert (enough_best["most"] == 12).all()
    assert enough_best.loc[3, "difference"] == pytest.approx(best.loc[3, "mean"] - best.loc[12, "mean"])
    assert 0 <= enough_best.loc[3, "p_within"] <= 1
    assert "How many frames are enough" in (report / "index.html").read_text()
    cost = pd.read_csv(report / "cost_per_configuration.csv").set_index("configuration")
    assert (cost.steps_done == table.groupby("configuration").steps_done.sum()).all()
    assert (cost.device_s > 0).all()
    timing = pd.read_csv(report / "timing.csv").set_index("configuration")
    for configuration, replicates in final.groupby("configuration"):
        assert timing.loc[configuration, "train_s_mean"] == pytest.approx(replicates.train_s.mean())
    trials = pd.read_csv(report / "trials.csv")
    assert sorted(trials.trial_id) == sorted(table.trial_id)
    page = (report / "index.html").read_text()
    assert "Noise floor" in page and "Welch" in page
    # the test views by novelty: every completed configuration's 2 seeds x 3 test views, in bands of novelty; the
    # test views lie farther from 3 training frames than from 12
    bands = pd.read_csv(report / "psnr_by_novelty.csv")
    assert set(bands.configuration) == set(final.configuration)
    assert (bands.groupby("configuration").views.sum() == 6).all() and bands.seeds.between(1, 2).all()
    novelty = bands.novelty_mean.mul(bands.views).groupby(bands.frames).sum() / bands.groupby("frames").views.sum()
    assert novelty[3] > novelty[12]
    assert "Test views by novelty (psnr)" in page


def test_the_best_trial_of_each_frame_count_is_rendered_and_shown_in_frame_order(study_sweep):
    done = study_sweep.table[study_sweep.table.stop_reason == "completed"]
    best = done.sort_values("best_psnr", ascending=False).groupby("frames").head(1).sort_values("frames")
    rendered = [json.loads(p.read_text())["trial_id"] for p in study_sweep.folder.glob("*/renders/circles/render.json")]
    assert sorted(rendered) == sorted(best.trial_id) and len(rendered) == 2, "one per frame count: render.per"
    assert "rendering 4 novel views of the best trial per frames" in study_sweep.result.stdout
    novel = pd.read_csv(study_sweep.folder / "report" / "novel_views.csv")
    assert novel.trial_id.tolist() == best.trial_id.tolist() and novel.frames.tolist() == [3, 12]


def test_the_page_opens_offline_in_a_real_browser(study_sweep, tmp_path):
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        pytest.fail("Chromium is missing: apt-get install chromium (make test installs it)")
    from playwright.sync_api import sync_playwright

    page_file = study_sweep.folder / "report" / "index.html"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        context = browser.new_context(viewport={"width": 1200, "height": 900}, offline=True)
        page = context.new_page()
        errors, failed = [], []
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("requestfailed", lambda request: failed.append(request.url))
        page.goto(page_file.as_uri(), wait_until="load")
        sizes = page.eval_on_selector_all("img", "images => images.map(i => [i.src, i.complete, i.naturalWidth])")
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        text = page.inner_text("body")
        page.click("nav.contents >> text=Compute cost")  # the contents take the reader to the section
        reached = page.evaluate("[location.hash, document.getElementById('compute-cost').getBoundingClientRect().top]")
        browser.close()
    assert reached[0] == "#compute-cost" and abs(reached[1]) < 5, reached
    assert not errors and not failed, (errors, failed)
    assert len(sizes) >= 4 and all(complete and width > 0 for _, complete, width in sizes), sizes
    assert "Seed noise" in text and "Compute cost" in text and "Provenance" in text
    assert (tmp_path / "report.png").stat().st_size > 20000


def test_mlflow_keeps_the_report_and_describes_the_experiment(study_sweep):
    client = MlflowClient(study_sweep.tracking_uri)
    experiment = client.get_experiment_by_name("study")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development", "opens on the runs, not GenAI"
    description = experiment.tags["mlflow.note.content"]
    assert str(study_sweep.folder / "report" / "index.html") in description and "| trial_id |" in description
    best = next(line for line in study_sweep.result.stdout.splitlines() if line.startswith("best configuration ("))
    assert f"{best}." in description and "over 2 seed replicates" in best, "the study's answer, as the console says"
    # the answer's line, not the plan's that says beforehand what the answer needs
    enough = [line for line in study_sweep.result.stdout.splitlines() if line.startswith("how many frames are")][-1]
    assert "the most frames compared, 12" in enough and f"{enough}." in description
    [parent] = [r for r in client.search_runs([experiment.experiment_id]) if "mlflow.parentRunId" not in r.data.tags]
    logged = {f.path for f in client.list_artifacts(parent.info.run_id, "report")}
    assert {"report/index.html", "report/seeds.csv", "report/learning_curves.png"} <= logged


def test_a_partial_sweep_gets_a_report_of_what_is_there(study_sweep, tmp_path):
    partial = tmp_path / "study"
    shutil.copytree(study_sweep.folder, partial, ignore=shutil.ignore_patterns("checkpoint_*", "report"))
    (partial / "results.csv").unlink()  # as if still running
    completed = study_sweep.table[study_sweep.table.stop_reason == "completed"].trial_id.iloc[0]
    [folder] = [p.parent for p in partial.glob("*/trial.json") if completed in p.parent.name]
    lines = (folder / "result.json").read_text().splitlines()
    (folder / "result.json").write_text("\n".join(lines[:1]) + "\n")  # this trial has reached its first rung only
    done = nerftune_command("report", partial)
    assert done.returncode == 0, done.stderr[-2000:]
    trials = pd.read_csv(partial / "report" / "trials.csv").set_index("trial_id")
    assert trials.loc[completed, "stop_reason"] == "unfinished"
    assert "unfinished" in (partial / "report" / "index.html").read_text()


def test_a_sweep_without_replicates_says_why_it_has_no_bands(shared_sweep):
    page = (shared_sweep.folder / "report" / "index.html").read_text()
    assert "No replicates" in page and "add `replicates: seed`" in page


def test_report_on_a_folder_that_is_not_a_sweep(tmp_path):
    (tmp_path / "notes").mkdir()
    for folder in (tmp_path / "notes", tmp_path / "missing"):
        done = nerftune_command("report", folder)
        assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "is not a sweep folder" in done.stderr and "sweeps/demo" in done.stderr
    assert list((tmp_path / "notes").iterdir()) == [] and not (tmp_path / "missing").exists()


def test_replay_refuses_a_sweep_without_intermediate_evaluations(study_sweep, tmp_path):
    once = tmp_path / "study"
    shutil.copytree(study_sweep.folder, once, ignore=shutil.ignore_patterns("checkpoint_*", "report"))
    for results in once.glob("*/result.json"):
        results.write_text(results.read_text().splitlines()[-1] + "\n")  # the last milestone only
    done = nerftune_command("replay", once, "--grace-period", "20")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "no intermediate evaluations" in done.stderr and "eval: {every: N}" in done.stderr
    assert not (once / "report").exists()

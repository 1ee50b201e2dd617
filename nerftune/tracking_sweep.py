"""The sweep's own MLflow run: opened with its provenance and a view of its trials in the UI, given the report, and
closed with every trial's stop reason and final values. Trial runs and the retrying client are in `tracking.py`."""

from __future__ import annotations

import json
import shlex
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from nerftune.tracking import (
    PENDING_FILE,
    STATUS_OF_STOP,
    TRIAL_TAG,
    Recorder,
    TrackingTarget,
    _now_ms,
    _params,
    _trial_runs,
    read_pending,
    send_metrics,
    write_pending,
)
from nerftune.trials import read_recipe, trial_files

EXPERIMENT_KIND_TAG, MODEL_TRAINING = "mlflow.experimentKind", "custom_model_development"
DESCRIPTION_TAG = "mlflow.note.content"  # the experiment's description in the UI (markdown)
VIEW_KEY = "nerftune"  # the `viewStateShareKey` of the link a sweep prints
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_KEY}"  # where the UI's Share button keeps a view: an experiment tag
SET_ASIDE = "set aside: interrupted before Ray saved it"  # the stop reason of such a trial's run


def runs_view(parent_run_id: str, params: Sequence[str], metric: str, mode: str) -> str:
    """How the sweep's link opens the MLflow UI's runs table: the sweep's run expanded to its trials, the searched
    values and the results as columns, the best first. The UI replaces its whole state with a shared view, so every
    field is given: MLflow's defaults but for the columns, the expanded run and the order."""
    results = [f"metrics.`{name}`" for name in (f"best_{metric}", f"final_{metric}", "steps_done")]
    return json.dumps(
        {
            "searchFilter": "",
            "orderByKey": f"metrics.`best_{metric}`",
            "orderByAsc": mode == "min",
            "startTime": "ALL",
            "lifecycleFilter": "Active",
            "modelVersionFilter": "All Runs",
            "datasetsFilter": [],
            "selectedColumns": [f"params.`{name}`" for name in params] + results + ["tags.`stop_reason`"],
            "runsExpanded": {parent_run_id: True},
            "columnOrder": [],
            "columnWidths": {},
            "runsPinned": [],
            "runsHidden": [],
            "runsVisibilityMap": {},
            "runsHiddenMode": "FIRST_10_RUNS",
            "viewMaximized": False,
            "runListHidden": False,
            "isAccordionReordered": False,
            "useGroupedValuesInCharts": True,
            "hideEmptyCharts": True,
            "groupBy": None,
            "groupsExpanded": {},
            "autoRefreshEnabled": True,
            "globalLineChartConfig": {"xAxisKey": "step", "lineSmoothness": 0, "selectedXAxisMetricKey": ""},
        }
    )


def start_sweep(
    target: TrackingTarget,
    spec_path: Path,
    params: Mapping[str, Any],
    tags: Mapping[str, str],
    shown: tuple[Sequence[str], str, str],
) -> tuple[TrackingTarget, list[str]]:
    """Create (or, on resume, reopen) the sweep's parent run, and the UI view of its trials (`shown`: the columns'
    params, the metric and its mode); returns the target with its ids and any failures."""
    recorder = Recorder(target.uri)
    experiment_id = _experiment_id(recorder, target)
    if experiment_id is None:
        return target, recorder.failures
    run_id = target.parent_run_id
    if run_id:
        recorder.call("reopen sweep run", recorder.client.update_run, run_id, status="RUNNING")
        for key, value in tags.items():  # a resume may add some (a forced resume says so)
            recorder.call("tag sweep run", recorder.client.set_tag, run_id, key, value)
    else:
        run = recorder.call(
            "create sweep run", recorder.client.create_run, experiment_id, run_name=target.experiment, tags=dict(tags)
        )
        if run is None:
            return target, recorder.failures
        run_id = run.info.run_id
        recorder.call("log sweep params", recorder.client.log_batch, run_id, params=_params(params))
        recorder.call("log spec", recorder.client.log_artifact, run_id, str(spec_path), "spec")
    view = runs_view(run_id, *shown)
    recorder.call("share the runs view", recorder.client.set_experiment_tag, experiment_id, VIEW_TAG, view)
    return replace(target, parent_run_id=run_id, experiment_id=experiment_id), recorder.failures


def _experiment_id(recorder: Recorder, target: TrackingTarget) -> str | None:
    experiment = recorder.call("find experiment", recorder.client.get_experiment_by_name, target.experiment)
    if experiment is not None:
        return experiment.experiment_id
    return recorder.call(
        "create experiment",
        recorder.client.create_experiment,
        target.experiment,
        artifact_location=target.artifact_root,
        tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING},  # MLflow 3's UI opens it on its runs, not its GenAI overview
    )


def ui_link(target: TrackingTarget) -> str:
    """Where the experiment's runs open in the MLflow UI, in the view `runs_view` shared. MLflow 3's UI starts in its
    GenAI mode whatever the experiment's kind; `workflowType=machine_learning` opens the runs table."""
    page = f"#/experiments/{target.experiment_id}/runs?viewStateShareKey={VIEW_KEY}&workflowType=machine_learning"
    if target.uri.startswith(("http://", "https://")):
        return f"{target.uri.rstrip('/')}/{page}"
    return f"http://127.0.0.1:5000/{page} (after `mlflow ui --backend-store-uri {shlex.quote(target.uri)} --port 5000`)"


def publish_report(target: TrackingTarget, report_dir: Path, description: str) -> list[str]:
    """The report as an artifact of the sweep's run (`report/`), and the experiment's description: a summary and
    where the report is."""
    recorder = Recorder(target.uri)
    if not target.parent_run_id:
        return ["no sweep run"]
    recorder.call("log report", recorder.client.log_artifacts, target.parent_run_id, str(report_dir), "report")
    if target.experiment_id:
        for key, value in ((DESCRIPTION_TAG, description), (EXPERIMENT_KIND_TAG, MODEL_TRAINING)):
            recorder.call("describe experiment", recorder.client.set_experiment_tag, target.experiment_id, key, value)
    return recorder.failures


def finish_sweep(
    target: TrackingTarget,
    trials: list[dict[str, Any]],
    summary: Mapping[str, float],
    results: Path,
    sweep_status: str = "FINISHED",
) -> list[str]:
    """Send what trials could not (their pending metrics), close every trial's run with its stop reason, final
    metrics and status, then the parent run with `sweep_status` (KILLED: the sweep was interrupted)."""
    from mlflow.entities import Metric, RunTag

    recorder = Recorder(target.uri)
    if not target.parent_run_id:
        return ["no sweep run"]
    now = _now_ms()
    pending = _pending_files(results.parent)  # results.csv lies in the sweep's folder
    runs = {run.data.tags.get(TRIAL_TAG): run for run in _trial_runs(recorder, target)}  # one search for all
    for trial in trials:
        run = runs.pop(trial["trial_id"], None)
        if run is None:
            continue
        run_id = run.info.run_id
        if trial["trial_id"] in pending:  # kept for the next run of the sweep's command if still unsent
            path = pending[trial["trial_id"]]
            write_pending(path, send_metrics(recorder, run_id, read_pending(path)))
        reason = trial["stop_reason"]
        metrics = [Metric(k, float(v), now, int(trial.get("steps_done") or 0)) for k, v in trial["final"].items()]
        recorder.call(
            "close trial run", recorder.client.log_batch, run_id, metrics=metrics, tags=[RunTag("stop_reason", reason)]
        )
        status = STATUS_OF_STOP.get(reason, "FAILED")
        recorder.call("set trial status", recorder.client.set_terminated, run_id, status)
    _close_set_aside(recorder, [run for run in runs.values() if run.info.status == "RUNNING"])
    parent = target.parent_run_id
    recorder.call(
        "log sweep summary",
        recorder.client.log_batch,
        parent,
        metrics=[Metric(k, v, now, 0) for k, v in summary.items()],
    )
    recorder.call("log results", recorder.client.log_artifact, parent, str(results))
    recorder.call("close sweep run", recorder.client.set_terminated, parent, sweep_status)
    return recorder.failures


def _close_set_aside(recorder: Recorder, open_runs: list[Any]) -> None:
    """Close, KILLED, the open runs of trials that Ray has no record of: a run killed before Ray saved its state
    leaves them (their folders are set aside in `interrupted/`, and their configurations ran again as new trials)."""
    for run in open_runs:
        run_id = run.info.run_id
        recorder.call("tag set-aside run", recorder.client.set_tag, run_id, "stop_reason", SET_ASIDE)
        recorder.call("close set-aside run", recorder.client.set_terminated, run_id, "KILLED")


def _pending_files(sweep_dir: Path) -> dict[str, Path]:
    """Each trial's pending metrics file, by trial id."""
    return {read_recipe(path.parent).trial_id: path for path in trial_files(sweep_dir, PENDING_FILE)}


def trial_summaries(table: Any, metric: str) -> list[dict[str, Any]]:
    """What `finish_sweep` records of each row of the results table: stop reason, steps and final values."""
    finals = [f"best_{metric}", f"final_{metric}", "train_s", "eval_s", "setup_s", "wall_s", "steps_done"]
    return [
        {
            "trial_id": row["trial_id"],
            "stop_reason": row["stop_reason"],
            "steps_done": row["steps_done"],
            "final": {k: row[k] for k in finals if row.get(k) is not None and row[k] == row[k]},
        }
        for row in table.to_dict("records")
    ]


def markdown_table(table: Any) -> str:
    """A table as Markdown, for the experiment's description in the MLflow UI."""
    cells = [[f"{v:.4g}" if isinstance(v, float) else str(v) for v in row] for row in table.itertuples(index=False)]
    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + " --- |" * len(table.columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])

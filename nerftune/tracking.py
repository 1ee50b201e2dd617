"""Everything MLflow: one parent run per sweep, one nested child run per trial, written so that it never stops training.

Without a tracking URI a sweep records to the SQLite store `<storage>/mlflow.db` with artifacts under
`<storage>/mlartifacts/`; with one (spec `tracking.uri` or `--tracking-uri`), the driver and every trial log to
that server directly. Every MLflow call retries with back-off, then gives up with one warning; metrics that could
not be sent stay queued for the next try (and in the trial folder's `mlflow-pending.json`, which the sweep's end
sends: a trial may end while its server is down), and the number of failed calls is reported with the trial's results.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
from PIL import Image

from nerftune.outcomes import StopReason
from nerftune.spec import TrackingSpec, value_text

# nerftune retries itself, with a short budget: MLflow's own default (7 retries, exponential back-off) would stall
# a trial for minutes on every call while a tracking server is down
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")

TRIAL_TAG = "nerftune.trial_id"
SWEEP_TAG = "nerftune.sweep"
PARENT_TAG = "mlflow.parentRunId"
RETRY_DELAYS_S = (0.5, 1.0, 2.0)
PENDING_FILE = "mlflow-pending.json"  # in a trial's folder: its metrics not sent yet
# MLflow's run status for each stop reason (any error: FAILED); a resume reopens an unfinished trial's run
STATUS_OF_STOP = {StopReason.COMPLETED: "FINISHED", StopReason.PRUNED: "KILLED", StopReason.UNFINISHED: "KILLED"}


@dataclass(frozen=True)
class TrackingTarget:
    """Where and what to record; travels to the trials with their plan."""

    uri: str
    experiment: str
    artifact_root: str | None = None  # for a local store; a server decides for itself
    checkpoints: str = "best"  # none | last | best
    images: str = "milestones"  # milestones | end | none
    preview_images: int = 3
    parent_run_id: str | None = None
    experiment_id: str | None = None


def target_for(settings: TrackingSpec, storage: Path, sweep_name: str, uri: str | None = None) -> TrackingTarget | None:
    """Where a sweep records: `uri` (--tracking-uri), else the spec's server, else the local store; None if off."""
    if not settings.enabled:
        return None
    experiment = settings.experiment or sweep_name
    options = dict(checkpoints=settings.checkpoints, images=settings.images, preview_images=settings.preview_images)
    uri = uri or settings.uri
    return TrackingTarget(uri, experiment, **options) if uri else local_target(storage, experiment, **options)


def local_target(storage: Path, experiment: str, **settings: Any) -> TrackingTarget:
    return TrackingTarget(
        uri=f"sqlite:///{storage / 'mlflow.db'}",
        experiment=experiment,
        artifact_root=(storage / "mlartifacts").as_uri(),
        **settings,
    )


class Recorder:
    """An MlflowClient whose calls never raise: each retries with back-off, then is counted as failed.

    `healthy` tells whether the last call went through. After a failure the next calls try once only, so an
    unreachable server costs a trial seconds, not minutes.
    """

    def __init__(self, uri: str):
        from mlflow import MlflowClient  # imported when used: validating a spec must not wait for MLflow

        self.uri = uri
        self.client = MlflowClient(tracking_uri=uri)
        self.failures: list[str] = []
        self.healthy = True

    def call(self, what: str, function: Callable, *args: Any, **kwargs: Any) -> Any:
        delays = RETRY_DELAYS_S if self.healthy else ()
        for delay in (*delays, None):
            try:
                result = function(*args, **kwargs)
                self.healthy = True
                return result
            except Exception as error:  # whatever the store raises, training goes on
                if delay is None:
                    if not self.failures:
                        warnings.warn(f"MLflow at {self.uri}: {what} failed ({error}); training goes on", stacklevel=2)
                    self.failures.append(f"{what}: {error}")
                    self.healthy = False
                    return None
                time.sleep(delay)
        return None


def _find_trial_run(recorder: Recorder, target: TrackingTarget, trial_id: str) -> str | None:
    runs = _trial_runs(recorder, target, f"tags.`{TRIAL_TAG}` = '{trial_id}'", max_results=1)
    return runs[0].info.run_id if runs else None


def _trial_runs(recorder: Recorder, target: TrackingTarget, condition: str = "", max_results: int = 50000) -> list[Any]:
    """The runs under the sweep's run (that meet `condition`, an MLflow search filter); none if MLflow fails."""
    under_sweep = f"tags.`{PARENT_TAG}` = '{target.parent_run_id}'"
    runs = recorder.call(
        "find trial runs",
        recorder.client.search_runs,
        [target.experiment_id],
        filter_string=f"{under_sweep} and {condition}" if condition else under_sweep,
        max_results=max_results,  # 50000: the most one MLflow search returns
    )
    return runs or []


def log_trial_folder(
    target: TrackingTarget,
    trial_id: str,
    folder: Path,
    artifact_path: str,
    metrics: Mapping[str, float | None] | None = None,
    step: int = 0,
) -> bool:
    """Add a folder (and `metrics`, at `step`) to a finished trial's run (renders made after the sweep); False when
    it cannot be logged."""
    run_id = _find_trial_run(Recorder(target.uri), target, trial_id)
    return bool(run_id) and log_to_run(target.uri, run_id, folder, artifact_path, metrics, step)


def log_to_run(
    uri: str,
    run_id: str,
    folder: Path,
    artifact_path: str,
    metrics: Mapping[str, float | None] | None = None,
    step: int = 0,
) -> bool:
    """Add a folder (and `metrics`, at `step`) to a run (a render or export made after the sweep); False when it
    cannot be logged."""
    recorder = Recorder(uri)
    if metrics:
        send_metrics(recorder, run_id, metric_entries(metrics, step))
    recorder.call(f"log {folder.name}/", recorder.client.log_artifacts, run_id, str(folder), artifact_path)
    return recorder.healthy


def log_to_trial_run(
    trial_dir: Path,
    folder: Path,
    artifact_path: str,
    tracking_uri: str | None = None,
    metrics: Mapping[str, float | None] | None = None,
    step: int = 0,
) -> str:
    """From a command run after the sweep (`render`, `export`): add a folder (and `metrics`) to the run the trial
    recorded, on the sweep's tracking store or `tracking_uri` (where the server moved); says where, or why not."""
    from nerftune.state import read_state
    from nerftune.trials import milestones

    run_id = next((m["mlflow_run_id"] for m in reversed(milestones(trial_dir)) if m.get("mlflow_run_id")), None)
    if run_id is None:
        return "MLflow: not logged (the trial recorded no MLflow run)"
    state = read_state(trial_dir.parent) or {}
    default_store = local_target(trial_dir.resolve().parent.parent, "").uri  # sweeps that recorded no URI used it
    uri = tracking_uri or state.get("tracking_uri") or default_store
    if log_to_run(uri, run_id, folder, artifact_path, metrics, step):
        return f"MLflow: logged to run {run_id} at {uri}, under {artifact_path}/"
    return f"MLflow: not logged ({uri} did not take it; rerun with --tracking-uri if the server moved)"


class TrialRun:
    """A trial's child run, opened in the worker that trains it; a restored trial reopens the same run."""

    def __init__(self, target: TrackingTarget, trial_id: str, trial_name: str, pending: Path | None = None):
        self.target = target
        self.recorder = Recorder(target.uri)
        self.pending = pending  # where metrics not sent yet wait, for a resumed trial or the sweep's end to send
        self.queued: list = read_pending(pending) if pending else []  # mlflow Metric objects not sent yet
        self.run_id = _find_trial_run(self.recorder, target, trial_id)
        if self.run_id is None:
            tags = {PARENT_TAG: target.parent_run_id, TRIAL_TAG: trial_id, SWEEP_TAG: target.experiment}
            run = self.recorder.call(
                "create trial run",
                self.recorder.client.create_run,
                target.experiment_id,
                run_name=trial_name,
                tags=tags,
            )
            self.run_id = run.info.run_id if run else None
        else:
            self.recorder.call("reopen trial run", self.recorder.client.update_run, self.run_id, status="RUNNING")

    @property
    def failures(self) -> int:
        return len(self.recorder.failures) + (self.run_id is None)

    def log_params(self, params: Mapping[str, Any]) -> None:
        if self.run_id:
            self.recorder.call("log params", self.recorder.client.log_batch, self.run_id, params=_params(params))

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Tags, unlike params, may change: where a trial runs can, when it is retried on another node."""
        from mlflow.entities import RunTag

        if self.run_id:
            batch = [RunTag(k, value_text(v)[:5000]) for k, v in tags.items()]
            self.recorder.call("set tags", self.recorder.client.log_batch, self.run_id, tags=batch)

    def queue_metrics(self, metrics: Mapping[str, float | None], step: int) -> None:
        self.queued += metric_entries(metrics, step)

    def flush(self) -> None:
        """Send the queued metrics; whatever could not be sent stays queued for the next flush, and in the pending
        file: a trial can end (or be stopped) while its tracking server is down."""
        if self.run_id:
            self.queued = send_metrics(self.recorder, self.run_id, self.queued)
        if self.pending:
            write_pending(self.pending, self.queued)

    def log_file(self, path: Path, folder: str | None = None) -> None:
        if self.run_id:
            self.recorder.call(f"log {path.name}", self.recorder.client.log_artifact, self.run_id, str(path), folder)

    def log_folder(self, path: Path, artifact_path: str) -> None:
        if self.run_id:
            self.recorder.call(
                f"log {path.name}/", self.recorder.client.log_artifacts, self.run_id, str(path), artifact_path
            )

    def log_text(self, text: str, file_name: str) -> None:
        if self.run_id:
            self.recorder.call(f"log {file_name}", self.recorder.client.log_text, self.run_id, text, file_name)

    def log_image(self, image: np.ndarray, file_name: str) -> None:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / Path(file_name).name
            Image.fromarray(image).save(path)
            self.log_file(path, str(Path(file_name).parent))


def send_metrics(recorder: Recorder, run_id: str, metrics: list) -> list:
    """Send metrics in MLflow's batches; returns those that could not be sent."""
    while metrics:
        batch = metrics[:1000]  # MLflow's batch limit
        recorder.call("log metrics", recorder.client.log_batch, run_id, metrics=batch)
        if not recorder.healthy:
            return metrics
        metrics = metrics[len(batch) :]
    return []


def metric_entries(metrics: Mapping[str, float | None], step: int) -> list:
    """MLflow Metric objects of the values that are numbers (None and NaN are left out: MLflow has no empty value)."""
    from mlflow.entities import Metric

    now = _now_ms()
    return [Metric(k, float(v), now, step) for k, v in metrics.items() if v is not None and np.isfinite(v)]


def read_pending(path: Path) -> list:
    from mlflow.entities import Metric

    if not path.is_file():
        return []
    return [Metric(key, value, timestamp, step) for key, value, timestamp, step in json.loads(path.read_text())]


def write_pending(path: Path, metrics: list) -> None:
    if not metrics:
        path.unlink(missing_ok=True)
        return
    temporary = path.with_suffix(".tmp")  # replaced whole: a kill mid-write leaves the previous file
    temporary.write_text(json.dumps([[m.key, m.value, m.timestamp, m.step] for m in metrics]))
    temporary.replace(path)


def _params(values: Mapping[str, Any]) -> list:
    """MLflow params: readable strings (lists and mappings as JSON) of at most MLflow's length (longer ones are cut)."""
    from mlflow.entities import Param
    from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

    def short(text: str) -> str:
        return text if len(text) <= MAX_PARAM_VAL_LENGTH else text[: MAX_PARAM_VAL_LENGTH - 3] + "..."

    return [Param(str(k), short(value_text(v))) for k, v in values.items()]


def _now_ms() -> int:
    return int(time.time() * 1000)

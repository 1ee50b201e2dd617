"""What a trial reports and how it ends: the one definition of metric names, their direction, and stop reasons.

The spec, the trainable, the results table, tracking and `nerftune eval` all use these names.
"""

from __future__ import annotations

from enum import Enum

# test-set image metrics, and which way is better; doc_* are the same inside each view's document region, and doc_cer
# the character error rate of the document's text read by OCR (`legibility.py`)
METRIC_MODES = {
    "psnr": "max",
    "ssim": "max",
    "lpips": "min",
    "doc_psnr": "max",
    "doc_ssim": "max",
    "doc_lpips": "min",
    "doc_cer": "min",
}
METRICS = tuple(METRIC_MODES)
# the values each metric can take (PSNR of images in [0, 1], SSIM's definition, distances and error rates): a mean's
# confidence interval is cut to them, which can only add to its coverage, as the true mean lies within them too
METRIC_RANGES = {
    **dict.fromkeys(("psnr", "doc_psnr", "lpips", "doc_lpips"), (0.0, float("inf"))),
    **dict.fromkeys(("ssim", "doc_ssim"), (-1.0, 1.0)),
    "doc_cer": (0.0, 1.0),  # edits over the truth's length, counted at most 1 (`character_error_rate`)
}
# the smallest difference that matters, unless a spec says (`metric.tolerance`): half a decibel of PSNR is hard to
# see; 0.01 of SSIM or LPIPS, and one character in a hundred, about as small
METRIC_TOLERANCES = {
    **dict.fromkeys(("psnr", "doc_psnr"), 0.5),
    **dict.fromkeys(("ssim", "doc_ssim", "lpips", "doc_lpips", "doc_cer"), 0.01),
}


def metric_amount(value: float, metric: str, form: str = "g") -> str:
    """A difference of `metric` in its units: "0.5 dB" of PSNR, "0.01" of SSIM (`form`: the number's format)."""
    return f"{value:{form}}{' dB' if metric.endswith('psnr') else ''}"

# per-trial timings and speeds, reported at every milestone and kept in results.csv
TIMINGS = ("train_s", "eval_s", "setup_s", "compile_s", "wall_s", "steps_per_s", "rays_per_s")
# where a trial ran: its device, what computed its hash grid, the GPU Ray gave it (CUDA_VISIBLE_DEVICES), the host
MACHINE = ("device", "implementation", "gpu_name", "gpu_memory_mb", "cuda_visible_devices", "host", "node_id")
# `poses: per_subset`: the trial's own SfM (frames asked, registered, worst pose error against the global solution as
# a fraction of the scene size and in degrees, seconds)
SUBSET_SFM = ("sfm_frames", "sfm_registered", "pose_error_position", "pose_error_rotation_deg", "sfm_s")
# the mask-error study: each metric over the test views nearest a corrupted frame, and over the others
# (and which frames were corrupted)
MASK_ERROR_COLUMNS = ("mask_error_frames",) + tuple(
    f"{metric}_{group}" for metric in METRICS for group in ("near_error", "elsewhere")
)

# a trial with a `finetune` stage: the stage of each milestone, and the RGB stage's last metrics and the fine-tuning
# stage's side by side (`psnr` and the others are the current stage's)
RGB, FINETUNE = "rgb", "finetune"
STAGE_COLUMNS = ("stage", *(f"{RGB}_{m}" for m in METRICS), *(f"{FINETUNE}_{m}" for m in METRICS))

# a warm start (`init_from`): how many of the trial's training frames kept the source's rows, and how many are new
WARM_START_COLUMNS = ("warm_shared_frames", "warm_new_frames")

# a completed trial's renders along the sweep's camera paths (`render`): their speed and the novel views' mean doc_cer
# over the views that show the document large enough to read (and how many do)
NOVEL_VIEWS = ("render_fps", "novel_doc_cer", "novel_doc_cer_views")

# what a milestone logs to MLflow as step metrics
MILESTONE_METRICS = (*METRICS, "steps_per_s", "rays_per_s", "eval_rays_per_s", "fps", "peak_gpu_mb")


class StopReason(str, Enum):
    """Why a trial ended; an errored trial's reason is `error: <its message>`."""

    COMPLETED = "completed"  # trained all its steps
    PRUNED = "asha_pruned"  # stopped early by the scheduler at a rung
    ERROR = "error"
    UNFINISHED = "unfinished"  # still training or waiting, or left to the resume of an interrupted run

    def __str__(self) -> str:
        return self.value


# what a trial whose process ended without an exception (SIGKILL, a crash in native code) died of, most often
PROCESS_DIED = "its process died (killed from outside: most often by the system's out-of-memory killer; see dmesg)"


def error_summary(message: str | None) -> str:
    """Why a trial failed, in one line: the last line of its error, or that its process died (Ray's own words for
    that are a paragraph of possible causes)."""
    message = str(message or "").rsplit("Failure # ", 1)[-1]  # Tune's error.txt appends each retry's failure
    if "worker process has died" in message:
        return PROCESS_DIED
    lines = [line for line in message.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else "unknown error"


def error_reason(message: str) -> str:
    """The stop reason of a trial that failed: `error: ` and its `error_summary`."""
    return f"{StopReason.ERROR.value}: {error_summary(message)}"


def is_error(reason: str) -> bool:
    return str(reason).startswith(f"{StopReason.ERROR.value}:")


def better(value: float, than: float | None, mode: str) -> bool:
    """Whether `value` improves on `than` (None: nothing yet) for a metric of this mode."""
    return than is None or (value > than if mode == "max" else value < than)


LPIPS_MISSING = (
    "LPIPS is empty: it needs AlexNet weights that torchvision downloads on first use, and they could not be had. "
    "PSNR and SSIM are unaffected. Copy alexnet-owt-7be5be79.pth into $TORCH_HOME/hub/checkpoints/ (default "
    "~/.cache/torch) on every machine that trains or evaluates."
)

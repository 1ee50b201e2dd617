"""The function Ray Tune runs for each trial. It loads the training stack (torch, nerfstudio) only when it runs, in
the trial's worker, so the sweep's driver process never imports it (about 7 s per sweep on 2 cores)."""

from __future__ import annotations

import os
from typing import Any

from nerftune.trial_plan import TrialPlan


def train_trial(config: dict[str, Any], plan: TrialPlan) -> None:  # its name is the prefix of every trial folder
    from nerftune.trainable import run_trial

    # Tune hands this worker the next trial once this one's thread has ended, and gives up after 2 s by default,
    # which fails the next trial; a stopped trial's thread ends at its report, a finished one has returned
    os.environ.setdefault("TUNE_FUNCTION_THREAD_TIMEOUT_S", "60")

    run_trial(config, plan)

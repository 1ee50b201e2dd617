"""`nerftune replay` says what it could not replay (the end-to-end replay runs in tests/test_sweep.py)."""

import pandas as pd

from nerftune.replay import left_out


def test_configurations_that_did_not_train_to_the_end_are_counted_as_left_out():
    trials = pd.DataFrame({"configuration": [0, 0, 1, 1, 2, 2], "stop_reason": ["completed"] * 4 + ["asha_pruned"] * 2})
    replayed = pd.DataFrame({"configuration": [0, 1]})
    (line,) = left_out(trials, replayed)
    assert line.startswith("left out: 1 configuration(s) whose replicates did not all train to the end")
    assert "the figures below are of the other 2" in line
    assert left_out(trials[trials.configuration < 2], replayed) == []

"""The scheduler's decisions on hand-made reports: replicate means, strata, waiting, errors and the saved book."""

import math

from nerftune.rung_book import CONTINUE, STOP, WAIT, RungBook


def book(replicates=2, mode="max", factor=2.0):
    return RungBook(rungs=[10, 20], replicates=replicates, reduction_factor=factor, mode=mode)


def test_a_configuration_waits_for_all_its_replicates_then_is_judged_on_their_mean():
    b = book()
    b.record("a", "s", "a0", 10, 20.0)
    assert b.verdict("a", 10) == WAIT
    b.record("a", "s", "a1", 10, 22.0)
    assert b.verdict("a", 10) == CONTINUE, "the first configuration at a rung always continues"
    assert b.means["s"]["10"] == {"a": 21.0}
    # b's replicates: one is better than a's mean, but their mean (20.5) is below the median of {21} -> both stop
    b.record("b", "s", "b0", 10, 23.0)
    b.record("b", "s", "b1", 10, 18.0)
    assert b.verdict("b", 10) == STOP
    assert b.verdict("b", 20) == STOP, "a stopped configuration stays stopped at later steps"


def test_the_cutoff_is_asha_s_quantile_of_the_earlier_means():
    # reduction factor 4: the cutoff is the 75th percentile of the earlier means 10, 20, 30, 40 = 32.5
    b = book(replicates=1, factor=4.0)
    for name, value in (("a", 10.0), ("b", 20.0), ("c", 30.0), ("d", 40.0)):
        b.record(name, "s", name, 10, value)
    b.record("e", "s", "e", 10, 32.0)
    b.record("f", "s", "f", 10, 33.0)
    assert b.verdict("e", 10) == STOP and b.verdict("f", 10) == CONTINUE


def test_strata_are_never_compared():
    b = book(replicates=1)
    b.record("good", "frames=48", "g", 10, 30.0)
    b.record("weak", "frames=6", "w", 10, 12.0)  # far worse, but the first of its own stratum
    assert b.verdict("weak", 10) == CONTINUE
    b.record("weaker", "frames=6", "w2", 10, 11.0)
    assert b.verdict("weaker", 10) == STOP


def test_lower_is_better_for_a_min_metric():
    b = book(replicates=1, mode="min")
    b.record("a", "s", "a", 10, 0.2)
    b.record("b", "s", "b", 10, 0.3)
    b.record("c", "s", "c", 10, 0.1)
    assert (b.verdict("b", 10), b.verdict("c", 10)) == (STOP, CONTINUE)


def test_an_errored_replicate_does_not_hang_its_configuration():
    b = book(replicates=3)
    b.record("a", "s", "a0", 10, 20.0)
    b.record("a", "s", "a1", 10, 22.0)
    assert b.verdict("a", 10) == WAIT
    b.lose("a", "a2")
    assert b.verdict("a", 10) == CONTINUE and b.means["s"]["10"]["a"] == 21.0


def test_a_replicate_that_errors_after_reporting_is_left_out_of_later_rungs():
    b = book(replicates=2)
    b.record("a", "s", "a0", 10, 20.0)
    b.record("a", "s", "a1", 10, 22.0)
    b.record("a", "s", "a0", 20, 25.0)
    b.lose("a", "a1")
    assert b.verdict("a", 20) == CONTINUE and b.means["s"]["20"]["a"] == 25.0


def test_a_report_between_rungs_changes_nothing_and_a_missing_metric_counts_as_worst():
    b = book(replicates=1)
    b.record("a", "s", "a", 10, 20.0)
    b.record("a", "s", "a", 15, 99.0)
    assert b.values["a"] == {"10": {"a": 20.0}}
    b.record("b", "s", "b", 10, None)
    assert b.verdict("b", 10) == STOP and math.isnan(b.means["s"]["10"]["b"])


def test_the_book_round_trips_through_its_file(tmp_path):
    b = book()
    b.record("a", "s", "a0", 10, 20.0)
    b.record("a", "s", "a1", 10, 21.0)
    b.record("b", "s", "b0", 10, 1.0)
    b.save(tmp_path / "book.json")
    again = RungBook.load(tmp_path / "book.json")
    assert again == b
    again.record("b", "s", "b1", 10, 2.0)
    assert again.verdict("b", 10) == STOP

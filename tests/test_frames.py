from hypothesis import given
from hypothesis import strategies as st
import pytest

from nerftune.data.frames import interval_test_indices, resolve_frame_count, select_evenly, train_pool


@given(st.integers(2, 400), st.data())
def test_selection_is_spread_over_the_pool_with_both_ends(pool_size, data):
    pool = sorted(data.draw(st.sets(st.integers(0, 2000), min_size=pool_size, max_size=pool_size)))
    count = data.draw(st.integers(1, pool_size))
    chosen = select_evenly(pool, count)
    assert len(chosen) == count
    assert chosen == sorted(set(chosen)), "strictly increasing, no frame twice"
    assert set(chosen) <= set(pool)
    assert chosen[0] == pool[0]
    if count >= 2:
        assert chosen[-1] == pool[-1]
        gaps = [pool.index(b) - pool.index(a) for a, b in zip(chosen, chosen[1:])]
        assert max(gaps) - min(gaps) <= 1, "evenly spaced in pool positions"


@given(st.integers(2, 500), st.integers(2, 20))
def test_test_frames_are_every_nth_and_never_in_the_pool(num_frames, every):
    test = interval_test_indices(num_frames, every)
    pool = train_pool(num_frames, test)
    assert test == list(range(0, num_frames, every))
    assert not set(test) & set(pool)
    assert sorted(test + pool) == list(range(num_frames))


def test_frame_counts_and_fractions():
    assert resolve_frame_count(12, 42) == 12
    assert resolve_frame_count(1.0, 42) == 42
    assert resolve_frame_count(0.5, 42) == 21
    assert resolve_frame_count(0.001, 42) == 1
    with pytest.raises(ValueError, match="more than the 42"):
        resolve_frame_count(43, 42)
    with pytest.raises(ValueError):
        resolve_frame_count(1.5, 42)
    with pytest.raises(ValueError):
        select_evenly([1, 2, 3], 4)

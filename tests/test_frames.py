import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
import pytest

from nerftune.data.dataset import load_dataset
from nerftune.data.frames import interval_test_indices, resolve_frame_count, select_evenly, select_subset, train_pool
from nerftune.trial_view import trial_view


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


@given(st.integers(1, 300), st.data())
def test_every_other_frame_subset_takes_one_frame_from_each_stretch_of_the_pool(pool_size, data):
    pool = sorted(data.draw(st.sets(st.integers(0, 2000), min_size=pool_size, max_size=pool_size)))
    count, subset = data.draw(st.integers(1, pool_size)), data.draw(st.integers(1, 10**6))
    chosen = select_subset(pool, count, subset)
    assert chosen == select_subset(pool, count, subset), "the same draw every time"
    positions = [pool.index(frame) for frame in chosen]
    stretches = [k * pool_size // count for k in range(count + 1)]
    assert all(stretches[k] <= p < stretches[k + 1] for k, p in enumerate(positions)), "one in each stretch, in order"
    assert select_subset(pool, count, 0) == select_evenly(pool, count), "0: the evenly spaced frames"
    assert select_subset(pool, pool_size, subset) == pool, "the whole pool: every subset is it"


def test_frame_subsets_differ_and_are_the_same_on_every_machine():
    pool = list(range(42))
    subsets = [tuple(select_subset(pool, 6, k)) for k in range(6)]
    assert len(set(subsets)) == 6, subsets
    # a hash of the value, not a random generator's stream: pinned, so a change that would move a study's frames fails
    assert select_subset(pool, 6, 1) == [5, 11, 19, 23, 33, 39]


def test_a_trial_trains_on_the_frames_of_its_frame_subset(scene_dir, tmp_path):
    dataset = load_dataset(scene_dir)
    views = {}
    for subset in (0, 1, 2):
        train, view, _, _ = trial_view({"frames": 5, "frame_subset": subset}, dataset, tmp_path / str(subset))
        written = json.loads((view / "transforms.json").read_text())
        assert [Path(f).name for f in written["train_filenames"]] == [
            Path(dataset.frame_names[i]).name for i in select_subset(dataset.pool, 5, subset)
        ]
        assert train == dataset.train_indices(5, subset)
        views[subset] = tuple(train)
    assert len(set(views.values())) == 3 and views[0] == tuple(dataset.train_indices(5)), "0 is the default"

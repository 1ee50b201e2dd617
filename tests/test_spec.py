"""Spec validation: good specs load; each kind of bad spec gets one line naming the file and the field."""

import pytest

from nerftune.errors import InputError
from nerftune.spec import load_spec

from conftest import ROOT

GOOD = """\
name: t
data: synthetic:id-card
space:
  frames: {values: [4, 8]}
  steps: 100
"""


STUDIES = (
    "frames_sfm.yaml",
    "masks.yaml",
    "mask_errors.yaml",
    "warm_start.yaml",
    "frame_subsets.yaml",
    "frame_subsets_demo.yaml",
    "novel_legibility.yaml",
)  # every configuration trains to the end


@pytest.mark.parametrize("name", ["demo.yaml", "frames.yaml", *STUDIES])
def test_shipped_specs_are_valid(name):
    spec = load_spec(ROOT / "search_spaces" / name)
    assert spec.trial_count >= 6
    assert spec.scheduler.type == ("none" if name in STUDIES else "asha")


def test_defaults_and_shorthands(write_spec):
    spec = load_spec(write_spec(GOOD))
    assert spec.metric.name == "psnr" and spec.metric.mode == "max"
    assert spec.fixed == {"seed": 0, "method": "nerfacto", "steps": 100}
    assert list(spec.searched) == ["frames"]
    assert spec.max_steps == 100
    assert spec.trial_count == 2, "two distinct configurations: not ten trials that repeat them"
    assert load_spec(write_spec(GOOD.replace("{values: [4, 8]}", "4"))).trial_count == 1
    assert spec.scheduler.grace_period == 100, "the default grace period (200) shrinks to the longest trial"
    short = load_spec(write_spec(GOOD.replace("steps: 100", "steps: 50")))
    assert short.scheduler.grace_period == 50 and load_spec(write_spec(GOOD)).scheduler.grace_period == 100, (
        "one spec's shrunk grace period does not leak into the next"
    )
    assert load_spec(write_spec(GOOD + "metric: lpips\n")).metric.mode == "min"
    assert load_spec(write_spec(GOOD + "render: {circles: {views: 2}, per: frames}\n")).render.per == ["frames"]


def test_nerfstudio_trainer_settings_by_their_own_names(write_spec):
    """mixed_precision and friends live on nerfstudio's TrainerConfig itself, a path with no dot: settings for a
    trial's config as dotted paths are, not unknown dimensions."""
    from nerftune.trials import TrialRecipe

    settings = "  mixed_precision: {values: [true, false]}\n  gradient_accumulation_steps: {value: {fields: 2}}\n"
    spec = load_spec(write_spec(GOOD + settings))
    assert spec.space["mixed_precision"].choices == [True, False] and "mixed_precision" in spec.searched
    assert spec.fixed["gradient_accumulation_steps"] == {"fields": 2}
    config = {"frames": 4, "seed": 0, "mixed_precision": False, "gradient_accumulation_steps": {"fields": 2}}
    recipe = TrialRecipe("t1", config | {"pipeline.model.hidden_dim": 8}, "tiny", "data", 8, "view")
    assert recipe.overrides == {
        "mixed_precision": False,
        "gradient_accumulation_steps": {"fields": 2},
        "pipeline.model.hidden_dim": 8,
    }


def test_list_and_mapping_values_fixed_and_searched(write_spec):
    networks = "[{hidden_dim: 16, num_levels: 5}, {hidden_dim: 16, num_levels: 5}]"
    spec = load_spec(
        write_spec(
            GOOD
            + "  pipeline.model.num_proposal_samples_per_ray: {values: [[64, 32], [32, 16]]}\n"
            + f"  pipeline.model.proposal_net_args_list: {{value: {networks}}}\n"
            + "  pipeline.model.camera_optimizer: {value: {mode: 'off'}}\n"
        )
    )
    assert spec.space["pipeline.model.num_proposal_samples_per_ray"].choices == [[64, 32], [32, 16]]
    assert spec.fixed["pipeline.model.proposal_net_args_list"] == [{"hidden_dim": 16, "num_levels": 5}] * 2
    assert spec.fixed["pipeline.model.camera_optimizer"] == {"mode": "off"}
    assert spec.trial_count == 4 and "pipeline.model.num_proposal_samples_per_ray" in spec.searched


BAD = {
    "yaml syntax": ("name: t\nspace: {frames: [1, 2\n", "line 3", "invalid YAML"),
    "unknown top-level key": (GOOD + "schedular: {type: asha}\n", "schedular", "unknown key"),
    "unknown nested key": (GOOD + "scheduler: {grace: 3}\n", "scheduler.grace", "valid keys here: type, grace_period"),
    # in the house's words, not pydantic's ("Input should be ...")
    "wrong type": (GOOD + "num_samples: many\n", "num_samples", "must be a whole number (got 'many')"),
    "not a choice": (
        GOOD + "scheduler: {type: hyperband}\n",
        "scheduler.type",
        "must be one of 'asha', 'none' (got 'hyperband')",
    ),
    "out of bounds": (GOOD + "checkpoints: {keep: 0}\n", "checkpoints.keep", "must be at least 1 (got 0)"),
    "an empty list": (
        GOOD + "render: {circles: {radii: [], views: 2}}\n",
        "render.circles.radii",
        "must list at least 1 value(s) (got [])",
    ),
    "not true or false": (
        GOOD + "render: {circles: {views: 2}, video: maybe}\n",
        "render.video",
        "must be true or false (got 'maybe')",
    ),
    "a name that cannot name a folder": (
        GOOD.replace("name: t", "name: a/b"),
        "name",
        "must start with a letter or a digit and hold only letters, digits, '_', '.' and '-': it names a folder",
    ),
    "an unknown metric, written short": (GOOD + "metric: psnrr\n", "spec.yaml: metric: must be one of 'psnr', ", ""),
    "empty values": (GOOD.replace("[4, 8]", "[]"), "space.frames", "empty"),
    "empty range": (
        GOOD + "  pipeline.model.hidden_dim: {type: int, min: 64, max: 16}\n",
        "space.pipeline.model.hidden_dim",
        "min (64) must be less than max (16)",
    ),
    "log of zero": (
        GOOD + "  optimizers.fields.optimizer.lr: {type: float, min: 0, max: 1, log: true}\n",
        "lr",
        "min > 0",
    ),
    "unknown dimension": (GOOD + "  hidden: {values: [1]}\n", "space.hidden", "dotted nerfstudio config path"),
    # a misspelling is named as one, the missing `steps` it stands for not first
    "misspelt dimension": (GOOD.replace("  steps: 100\n", "  stepz: 100\n"), "space.stepz", "did you mean `steps`?"),
    "misspelt setting": (GOOD + "  mixed_precison: false\n", "space.mixed_precison", "mean `mixed_precision`?"),
    "unknown pose source": (GOOD + "  poses: {values: [global, colmap]}\n", "space.poses", "global or per_subset"),
    "masks not on or off": (GOOD + "  masks: {values: [yes-ish]}\n", "space.masks", "on or off"),
    "unknown mask error": (
        GOOD + "  mask_error: {values: [none, {frames: 1, kind: blur, size: 0.1}]}\n",
        "space.mask_error",
        "kind 'blur' is unknown",
    ),
    "mask error without a size": (
        GOOD + "  mask_error: {values: [{frames: 1, kind: erode}]}\n",
        "space.mask_error",
        "is not a mask error",
    ),
    "missing steps": (GOOD.replace("  steps: 100\n", ""), "space.steps", "required"),
    "fractional steps": (GOOD.replace("steps: 100", "steps: 10.5"), "space.steps", "whole numbers"),
    "bad frame count": (GOOD.replace("[4, 8]", "[0, 8]"), "space.frames", "not a frame count"),
    "grid over a range": (
        GOOD + "  seed: {type: int, min: 0, max: 3}\nsearch: {algorithm: grid}\n",
        "space.seed",
        "a grid search needs `values`",
    ),
    "missing data": ("name: t\nspace: {steps: 10}\n", "data", "required field is missing"),
    "wrong mode": (GOOD + "metric: {name: psnr, mode: min}\n", "metric", "higher psnr is better, so its mode is 'max'"),
    "no tolerance": (GOOD + "metric: {name: psnr, tolerance: 0}\n", "metric.tolerance", "must be more than 0.0 (got 0)"),
    "grace period over steps": (
        GOOD + "scheduler: {grace_period: 150}\n",
        "scheduler.grace_period",
        "more than the longest trial (100 steps)",
    ),
    "render without paths": (GOOD + "render: {trials: each}\n", "render", "either `paths`"),
    "render per a fixed dimension": (
        GOOD + "render: {circles: {views: 2}, per: steps}\n",
        "render.per",
        "'steps' is not a searched dimension with listed values (name one of frames)",
    ),
    "render per the replicates": (
        GOOD + "  seed: {values: [0, 1]}\nreplicates: seed\nrender: {circles: {views: 2}, per: seed}\n",
        "render.per",
        "'seed' is the replicate dimension",
    ),
    "render per with every trial": (
        GOOD + "render: {circles: {views: 2}, trials: each, per: frames}\n",
        "render.per",
        "applies to `trials: best`",
    ),
    "unknown scene": (GOOD.replace("synthetic:id-card", "synthetic:passport"), "data.path", "available: id-card"),
    "a value YAML reads as a date": (
        GOOD + "  pipeline.model.note: 2026-11-27\n",
        "space.pipeline.model.note",
        "is not a",
    ),
    "a fixed mapping without value:": (
        GOOD + "  pipeline.model.camera_optimizer: {mode: 'off'}\n",
        "space.pipeline.model.camera_optimizer.mode",
        "{value: {...}}",
    ),
    "a list value twice": (
        GOOD + "  pipeline.model.num_proposal_samples_per_ray: {values: [[64, 32], [64, 32]]}\n",
        "num_proposal_samples_per_ray",
        "lists a value twice",
    ),
    "replicates not searched": (GOOD + "replicates: seed\n", "replicates", "'seed' is not a searched dimension"),
    "frame subsets a searcher would pick among": (
        GOOD + "  frame_subset: {values: [0, 1, 2]}\n",
        "search.algorithm",
        "tpe would favour the luckier frame subsets (use grid or random, or make them the replicates",
    ),
    "frame subsets a scheduler would stop": (
        GOOD + "  frame_subset: {values: [0, 1, 2]}\nsearch: {algorithm: grid}\n",
        "scheduler",
        "ASHA would stop the unluckier frame subsets early, and only the luckier would be compared (add frame_subset "
        "to stratify, use `scheduler: {type: none}`, or make them the replicates (`replicates: frame_subset`))",
    ),
    "a frame subset that is no subset": (
        GOOD + "  frame_subset: {values: [0, -1]}\n",
        "space.frame_subset",
        "frame_subset must be whole numbers >= 0",
    ),
    "replicates with one value": (
        GOOD + "  seed: {values: [3]}\nreplicates: seed\n",
        "replicates",
        "not a searched dimension",
    ),
    "replicates over a range": (
        GOOD + "  seed: {type: int, min: 0, max: 3}\nreplicates: seed\n",
        "replicates",
        "replicates need listed values",
    ),
    "stratum not searched": (GOOD + "stratify: method\n", "stratify", "'method' is not a searched dimension"),
    "continuous stratum": (
        GOOD + "  optimizers.fields.optimizer.lr: {type: float, min: 1.0e-3, max: 1.0e-2}\n"
        "stratify: [frames, optimizers.fields.optimizer.lr]\n",
        "stratify",
        "'optimizers.fields.optimizer.lr' is a continuous distribution (give `optimizers.fields.optimizer.lr` as "
        "`values: [...]`, or name one of frames)",
    ),
    "two scenes of one name": (
        GOOD.replace("data: synthetic:id-card", "data: [../a/card, ../b/card]"),
        "data",
        "two datasets are both named 'card'",
    ),
    "scene in the space": (
        GOOD.replace("data: synthetic:id-card", "data: [a, b]") + "  scene: {values: [a, b]}\n",
        "space.scene",
        "the scenes come from `data`",
    ),
    "a bad key of one dataset": (
        GOOD.replace("data: synthetic:id-card", "data: [a, {path: b, test_evry: 4}]"),
        "data[1].test_evry",
        "valid keys here: path, name, test_every, scene",
    ),
    "a warm start's unknown dimension": (
        GOOD + "warm_start: {frame: 8, steps: 200}\n",
        "warm_start.frame",
        "is not a dimension the source model can take",
    ),
    "a warm start of two values": (GOOD + "warm_start: {frames: [8, 16]}\n", "warm_start.frames", "give one value"),
    "a warm start's bad frame count": (GOOD + "warm_start: {frames: 0}\n", "warm_start.frames", "not a frame count"),
    "a warm start over a range": (
        GOOD + "  seed: {type: int, min: 0, max: 3}\nwarm_start: {frames: 8}\n",
        "warm_start.seed",
        "the space searches a range of seed",
    ),
    "init_from source without a warm start": (
        GOOD + "  init_from: source\n",
        "space.init_from",
        "`source` needs a `warm_start` block",
    ),
    "a warm start no trial starts from": (
        GOOD + "  init_from: ../a/trial\nwarm_start: {frames: 8}\n",
        "space.init_from",
        "no trial starts from",
    ),
    "a password in the tracking URI": (
        GOOD + "tracking: {uri: 'postgresql://mlflow:hunter2@db:5432/mlflow'}\n",
        "tracking.uri",
        "holds a password: leave it out of the spec",
    ),
    "stratum is the replicate": (
        GOOD + "  seed: {values: [0, 1]}\nreplicates: seed\nstratify: seed\n",
        "stratify",
        "is the replicate dimension",
    ),
}


def test_replicates_multiply_configurations(write_spec):
    text = GOOD.replace("  steps: 100", "  steps: 100\n  seed: {values: [0, 1, 2]}") + "replicates: seed\n"
    spec = load_spec(write_spec(text + "stratify: frames\n"))
    assert (spec.configuration_count, spec.trial_count, spec.replicate_values) == (2, 6, [0, 1, 2])
    assert list(spec.configuration_space) == ["frames"] and spec.stratify == ["frames"]
    tpe = load_spec(write_spec(text.replace("frames: {values: [4, 8]}", "frames: {type: int, min: 4, max: 9}")))
    assert (tpe.configuration_count, tpe.trial_count) == (10, 30), "num_samples (default 10) counts configurations"


def test_a_warm_start_block_starts_every_trial_from_a_source_of_one_configuration(write_spec):
    text = (
        GOOD.replace("  steps: 100", "  steps: 100\n  seed: {values: [0, 1]}") + "replicates: seed\nstratify: frames\n"
    )
    spec = load_spec(write_spec(text + "warm_start: {frames: 16, steps: 300}\n"))
    assert spec.fixed["init_from"] == "source" and spec.trial_count == 4, "init_from: source is added, fixed"
    source = spec.source_spec()
    assert source.fixed == {"frames": 16, "seed": 0, "method": "nerfacto", "steps": 300}, "its values, else the first"
    assert (source.trial_count, source.scheduler.type, source.warm_start, source.replicates) == (1, "none", None, None)
    mixed = load_spec(
        write_spec(
            text.replace("  steps: 100", "  steps: 100\n  init_from: [source, ../a/trial]")
            + "warm_start: {frames: 16}\n"
        )
    )
    assert mixed.space["init_from"].choices == ["source", "../a/trial"] and mixed.source_spec().fixed["steps"] == 100


def test_several_datasets_make_the_scene_a_stratum(write_spec):
    text = GOOD.replace("data: synthetic:id-card", "data: [../captures/card-a, {path: synthetic:id-card, name: synth}]")
    spec = load_spec(write_spec(text))
    assert [entry.scene_name for entry in spec.data] == ["card-a", "synth"]
    assert spec.space["scene"].choices == ["card-a", "synth"] and spec.stratify == ["scene"]
    assert spec.configuration_count == 4, "2 frame counts x 2 scenes"
    seeds = (
        text.replace("  steps: 100", "  steps: 100\n  seed: {values: [0, 1]}") + "replicates: seed\nstratify: frames\n"
    )
    study = load_spec(write_spec(seeds))
    assert study.stratify == ["frames", "scene"] and (study.configuration_count, study.trial_count) == (4, 8)
    single = load_spec(write_spec(GOOD))
    assert single.data[0].scene_name == "id-card" and "scene" not in single.space and single.stratify == []


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_spec_is_one_clear_line(case, write_spec):
    text, field, problem = BAD[case]
    path = write_spec(text)
    with pytest.raises(InputError) as caught:
        load_spec(path)
    line = str(caught.value)
    assert "\n" not in line
    assert line.startswith(str(path)), line
    assert field in line and problem in line, line


def test_a_password_in_the_spec_is_not_echoed(write_spec):
    with pytest.raises(InputError) as caught:
        load_spec(write_spec(GOOD + "tracking: {uri: 'postgresql://mlflow:hunter2@db:5432/mlflow'}\n"))
    assert "hunter2" not in str(caught.value) and "PGPASSWORD" in str(caught.value)


def test_missing_spec_file(tmp_path):
    with pytest.raises(InputError, match="cannot read the spec"):
        load_spec(tmp_path / "nope.yaml")


def test_frame_subsets_may_be_searched_where_no_searcher_or_scheduler_picks_among_them(write_spec):
    subsets = GOOD + "  frame_subset: {values: [0, 1, 2]}\n"
    for extra in (
        "search: {algorithm: random}\nscheduler: {type: none}\n",
        "search: {algorithm: grid}\nstratify: [frames, frame_subset]\n",  # ASHA within each subset of each count
        "replicates: frame_subset\n",  # tpe and ASHA over configurations, each judged on all its subsets
    ):
        spec = load_spec(write_spec(subsets + extra))
        assert spec.space["frame_subset"].choices == [0, 1, 2]

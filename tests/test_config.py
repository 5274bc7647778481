"""Recipes: the packaged presets load into the config dataclasses, unknown keys and wrong types are one-line
errors naming the key and the file, --set overrides, and the resolved recipe round-trips."""

import pytest

from weakmir.config import apply_sets, available, from_dict, load_recipe, to_dict
from weakmir.errors import WeakmirError
from weakmir.experiments.majl import MajlPreset
from weakmir.experiments.score_supervised import ScorePreset
from weakmir.experiments.self_refine import ExperimentPreset
from weakmir.experiments.weak_mic import WeakMicPreset


@pytest.mark.parametrize("method,cls", [("self-refine", ExperimentPreset), ("score-supervised", ScorePreset),
                                        ("weak-mic", WeakMicPreset), ("majl", MajlPreset)])
def test_every_packaged_recipe_loads_and_round_trips(method, cls):
    assert available(method) == ["paper", "quick", "tiny"]
    for name in available(method):
        cfg, resolved, path = load_recipe(cls, method, name)
        assert path.name == f"{name}.yaml" and isinstance(cfg, cls)
        assert from_dict(cls, resolved) == cfg and to_dict(cfg) == resolved


def test_quick_recipes_hold_the_settings_of_the_measured_tables():
    """The README's tables were measured with these values (the Python presets they replaced)."""
    sr, _, _ = load_recipe(ExperimentPreset, "self-refine", "quick")
    assert (sr.tracks, sr.sample_rate, sr.classifier.steps, sr.separator.steps, sr.separator.model) == (
        40, 22050, 150, 200, "xumx")
    ss, _, _ = load_recipe(ScorePreset, "score-supervised", "quick")
    assert ss.train.steps == (1800, 400, 300) and ss.train.mixture_level == "frame" and ss.train.alpha2 == 4.0
    assert ss.bach10_soundfonts == ("TimGM6mb",) and ss.bach10_mixture == ("clip", 0.5, 0.15)


def test_unknown_key_wrong_type_and_bad_yaml_name_the_key_and_the_file(tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text("tracks: 3\ntrain:\n  stepz: [1, 2, 3]\n")
    with pytest.raises(WeakmirError, match=r"r\.yaml: unknown key 'train\.stepz' for ScoreConfig"):
        load_recipe(ScorePreset, "score-supervised", str(bad))
    bad.write_text("tracks: many\n")
    with pytest.raises(WeakmirError, match=r"r\.yaml: tracks must be an int, not 'many'"):
        load_recipe(ScorePreset, "score-supervised", str(bad))
    bad.write_text("tracks: [1\n")
    with pytest.raises(WeakmirError, match=r"r\.yaml: not valid YAML \(line"):
        load_recipe(ScorePreset, "score-supervised", str(bad))
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(WeakmirError, match="a recipe is a YAML mapping"):
        load_recipe(ScorePreset, "score-supervised", str(bad))
    with pytest.raises(WeakmirError, match="no such recipe file"):
        load_recipe(ScorePreset, "score-supervised", str(tmp_path / "missing.yaml"))
    bad.write_text("train:\n  mixture_level: sideways\n")
    with pytest.raises(WeakmirError, match="mixture_level must be 'clip' or 'frame'"):
        load_recipe(ScorePreset, "score-supervised", str(bad))


def test_a_partial_recipe_file_keeps_the_defaults(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text("tracks: 7\ntrain:\n  steps: [3, 2, 1]\n")
    cfg, resolved, _ = load_recipe(ScorePreset, "score-supervised", str(f))
    assert cfg.tracks == 7 and cfg.train.steps == (3, 2, 1) and cfg.train.n_fft == ScorePreset().train.n_fft
    assert resolved["train"]["steps"] == [3, 2, 1]


def test_set_overrides_read_yaml_values_and_refuse_unknown_keys():
    d = apply_sets({"train": {"steps": [1, 2, 3]}}, ["train.steps=[4,5,6]", "workers=1", "train.mixture_level=clip",
                                                     "train.instruments=null"], ScorePreset)
    assert d == {"train": {"steps": [4, 5, 6], "mixture_level": "clip", "instruments": None}, "workers": 1}
    with pytest.raises(WeakmirError, match="--set train.nope: unknown key 'train.nope'"):
        apply_sets({}, ["train.nope=1"], ScorePreset)
    with pytest.raises(WeakmirError, match="give key=value"):
        apply_sets({}, ["workers"], ScorePreset)
    cfg, _, _ = load_recipe(ScorePreset, "score-supervised", "tiny", ["train.seed=5", "classifier_alpha2=2"])
    assert cfg.train.seed == 5 and cfg.classifier_alpha2 == 2.0 and isinstance(cfg.classifier_alpha2, float)


def test_a_float_written_without_a_dot_is_a_float():
    from weakmir.experiments.majl import recipe

    P, resolved = recipe("quick", ["train.pe_lr=5e-5", "stage2.lr=1E-3"])  # YAML 1.1 reads these as strings
    assert P.train.pe_lr == 5e-5 and P.stage2.lr == 1e-3 and resolved["train"]["pe_lr"] == 5e-5
    for bad in ("train.pe_lr=nan", "train.pe_lr=fast", "train.epochs=5e1"):
        with pytest.raises(WeakmirError, match="must be a"):
            recipe("quick", [bad])

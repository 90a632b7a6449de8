"""Recipes: every training choice in one object, resolved by name, by what the data is, and by flags."""

import json
from dataclasses import asdict

import pytest
import torch

from kws.datasets.synth import SynthConfig
from kws.errors import UserError
from kws.recipes import RECIPES, SYNTH_MARKER, parse_changes, resolve

from .conftest import kws


def _real_layout(root):
    (root / "yes").mkdir(parents=True)
    (root / "validation_list.txt").write_text("")
    (root / "testing_list.txt").write_text("")
    return root


def test_the_named_recipes_exist_and_the_quick_start_is_the_synth_recipe():
    assert {"speech-commands", "synth", "mnist", "digits"} <= set(RECIPES)
    synth = RECIPES["synth"]
    assert (synth.members, synth.epochs, synth.augment, synth.norm, synth.time_pool, synth.unknown_words) == \
        (2, 14, "acoustic", "channel-mean", True, True)
    one = RECIPES["speech-commands"]
    assert (one.members, one.epochs, one.augment, one.norm, one.time_pool) == (2, 30, "basic", "channel-mean", True)
    with pytest.raises(Exception):  # frozen: a recipe is changed by `replace`, never in place
        synth.members = 3


def test_the_data_decides_the_default_recipe_not_its_name(tmp_path):
    built = _real_layout(tmp_path / "anywhere" / "my-corpus")
    assert resolve(str(built))[1].name == "speech-commands"  # a real Speech Commands folder
    (built / SYNTH_MARKER).write_text("{}\n")  # what `kws synth` leaves in every corpus it builds
    assert resolve(str(built))[1] == resolve("synth")[1]
    assert resolve("mnist")[1].name == "mnist" and resolve("digits")[1].epochs == 15
    assert resolve(None) == ("speech-commands", resolve("speech-commands")[1])
    assert resolve(None, "digits")[0] == "digits"  # a recipe named alone trains on its own data


def test_changes_override_single_fields_and_the_rate_follows_the_model():
    _, base = resolve("synth")
    _, changed = resolve("synth", members=4, epochs=None, norm="utterance")
    assert (changed.members, changed.epochs, changed.norm) == (4, base.epochs, "utterance")
    assert asdict(changed) | {"members": 2, "norm": "channel-mean"} == asdict(base)
    assert base.lr == 3e-3 and resolve("synth", preset="wide")[1].lr == 1e-3
    assert resolve("synth", preset="wide", lr=0.02)[1].lr == 0.02
    _, mnist_under_synth = resolve("mnist", "synth")
    assert mnist_under_synth.name == "synth"  # a name given wins over the data's own


def test_bad_recipes_and_fields_are_refused():
    with pytest.raises(UserError, match="--recipe fancy: choose one of speech-commands"):
        resolve("synth", "fancy")
    with pytest.raises(UserError, match="--norm band"):
        resolve("synth", norm="band")
    with pytest.raises(TypeError, match="not recipe fields: colour"):
        resolve("synth", colour="blue")
    with pytest.raises(UserError, match="label smoothing 1: choose a share"):
        resolve("synth", label_smoothing=1.0)


def test_script_changes_reach_the_recipe_its_augmentation_and_its_frontend():
    changes = parse_changes(["epochs=3", "time_pool=false", "reverb=0", "lifter=13", "lr=0.01"])
    assert changes == {"epochs": 3, "time_pool": False, "augment_set": (("reverb", 0.0),),
                       "frontend_set": (("lifter", 13),), "lr": 0.01}
    recipe = resolve("synth", **changes)[1]
    assert recipe.augment_set == (("reverb", 0.0),) and "augment_set=reverb:0" in recipe.line()
    with pytest.raises(ValueError, match="colour=blue"):
        parse_changes(["colour=blue"])


def test_a_changed_augmentation_field_keeps_the_recipes_others():
    """A sweep that changes one augmentation field trains the recipe with that field changed, not
    the recipe without its own augmentation (the real recipe's noise by SNR)."""
    own = dict(RECIPES["speech-commands"].augment_set)
    assert own["noise_snr_db"] > 0
    recipe = resolve("speech-commands", "speech-commands", **parse_changes(["speed=0.1"]))[1]
    assert dict(recipe.augment_set) == {**own, "speed": 0.1}
    recipe = resolve("speech-commands", "speech-commands", **parse_changes(["noise_snr_db=0"]))[1]
    assert dict(recipe.augment_set)["noise_snr_db"] == 0


def test_kws_recipes_lists_each_recipe_with_its_fields():
    r = kws("recipes")
    assert r.returncode == 0, r.stderr
    for name, recipe in RECIPES.items():
        assert any(line.startswith(name) and recipe.about in line for line in r.stdout.splitlines()), name
    members = next(line for line in r.stdout.splitlines() if line.split()[:1] == ["members"])
    assert members.split()[1:] == [str(r.members) for r in RECIPES.values()]
    assert "--recipe" in kws("train", "--help").stdout and "synth" in kws("train", "--help").stdout


def test_the_resolved_recipe_is_printed_and_saved_in_checkpoint_and_metrics(tmp_path):
    run = tmp_path / "run"
    r = kws("train", "--dataset", "digits", "--epochs", "1", "--members", "2", "--out", run)
    assert r.returncode == 0, r.stderr
    _, expected = resolve("digits", epochs=1, members=2)
    assert [line for line in r.stderr.splitlines() if line.startswith("recipe ")] == [expected.line()]
    saved = json.loads(json.dumps(asdict(expected)))  # (tuples are lists once saved)
    assert torch.load(run / "model.pt", weights_only=True)["train_args"]["recipe"] == saved
    assert json.loads((run / "metrics.json").read_text())["recipe"] == saved


def test_label_smoothing_reaches_the_loss(tmp_path):
    """Smoothed targets cannot be fitted exactly: with 0.3 of each spread over ten digits, no net's
    loss goes below the targets' own entropy (about 1.18), where unsmoothed training falls well under it."""
    losses = {}
    for share in (0.0, 0.3):
        run = tmp_path / f"ls{share}"
        r = kws("train", "--dataset", "digits", "--epochs", "5", "--label-smoothing", str(share), "--out", run)
        assert r.returncode == 0, r.stderr
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["recipe"]["label_smoothing"] == share
        losses[share] = metrics["history"][-1]["train_loss"]
    floor = -(0.73 * torch.log(torch.tensor(0.73)) + 9 * 0.03 * torch.log(torch.tensor(0.03))).item()
    assert losses[0.3] >= floor - 0.01 and losses[0.0] < floor - 0.5, losses


def test_a_corpus_by_path_and_by_name_trains_the_same(small_corpus, tmp_path):
    """`--dataset synth` finds its corpus under the data folder; the same corpus passed by its path
    must train exactly the same: same recipe, same first-epoch loss."""
    data = tmp_path / "data"
    data.mkdir()
    (data / SynthConfig().folder_name()).symlink_to(small_corpus)  # where `--dataset synth` looks
    args = ["--words", "yes,no", "--epochs", "1", "--seed", "4", "--calibration-minutes", "0", "--near-misses", "0"]
    by_name = kws("train", "--dataset", "synth", "--data-dir", data, "--out", tmp_path / "a", *args)
    by_path = kws("train", "--dataset", small_corpus, "--out", tmp_path / "b", *args)
    assert by_name.returncode == 0 and by_path.returncode == 0, by_name.stderr + by_path.stderr
    a, b = (json.loads((tmp_path / n / "metrics.json").read_text()) for n in "ab")
    assert a["recipe"] == b["recipe"] and a["recipe"]["name"] == "synth"
    assert a["history"][0]["train_loss"] == b["history"][0]["train_loss"]
    plain = kws("train", "--dataset", small_corpus, "--recipe", "speech-commands", "--out", tmp_path / "c", *args)
    assert plain.returncode == 0, plain.stderr
    c = json.loads((tmp_path / "c" / "metrics.json").read_text())
    assert c["history"][0]["train_loss"] != a["history"][0]["train_loss"]  # (the loss can tell recipes apart)

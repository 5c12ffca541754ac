"""Model cards are checked on load: one line naming the card, before any image is read."""

import json
import shutil

import pytest

from roadfeat.cli import main
from roadfeat.io import InputError
from roadfeat.model import DEFAULT_MODEL, RoadModel
from roadfeat.synth import write_scenes


@pytest.fixture()
def model_copy(tmp_path):
    shutil.copytree(DEFAULT_MODEL, tmp_path / "m")
    return tmp_path / "m"


def _edit(folder, **changes):
    path = folder / "card.json"
    card = json.loads(path.read_text())
    for k, v in changes.items():
        if v is KeyError:
            del card[k]
        else:
            card[k] = v
    path.write_text(json.dumps(card))


@pytest.mark.parametrize("changes, words", [
    ({"threshold": "0.3"}, "'threshold' must be a number in [0, 1]"),
    ({"threshold": 1.5}, "'threshold' must be a number in [0, 1]"),
    ({"train_gsd": "half"}, "'train_gsd' must be a number"),
    ({"train_gsd": 0.0}, "'train_gsd' must be 0.05 to 10"),
    ({"post": {"min_area_m2": "big"}}, "'post' field 'min_area_m2' must be a number"),
    ({"post": {"bridge": "yes"}}, "'post' field 'bridge' must be bool"),
    ({"calibration": {"a": None, "b": 1.0}}, "'calibration' field 'a' must be a number"),
    ({"adapt": {"weight": 2}}, "'adapt' field 'weight' must be 0 to 1"),
    ({"threshold_rule": {"shift": "up"}}, "'threshold_rule' field 'shift' must be a number"),
    ({"threshold_rule": {"centre": 2.0}}, "'threshold_rule' field 'centre' must be 0 to 1"),
    ({"n_rounds": 0}, "'n_rounds' must be at least 1"),
    ({"seed": 1.5}, "'seed' must be an integer"),
    ({"feature_names": "a,b"}, "'feature_names' must be a list of strings"),
    ({"colour": "red"}, "unknown keys ['colour']"),
    ({"post": KeyError}, "model card has no 'post'"),
])
def test_bad_card_fields_are_refused_in_one_line(model_copy, changes, words):
    _edit(model_copy, **changes)
    with pytest.raises(InputError) as err:
        RoadModel.load(model_copy)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(str(model_copy / "card.json")) and words in msg


def test_a_card_of_an_earlier_version_loads(model_copy):
    # No 'adapt' (before self-training existed), and a key only earlier versions wrote.
    _edit(model_copy, adapt=KeyError, refit_on_all_images=True)
    model = RoadModel.load(model_copy)
    assert model.adapt is None and model.card["refit_on_all_images"] is True


def test_predict_with_a_bad_card_exits_2_before_any_mask(model_copy, tmp_path, capsys):
    write_scenes(tmp_path / "in", 2, seed=1, size=64)
    _edit(model_copy, threshold=[0.5])
    assert main(["predict", "--model", str(model_copy), "--images", str(tmp_path / "in"),
                 "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "card.json" in err[0] and "'threshold'" in err[0]
    assert not (tmp_path / "out").exists()

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.deploy.builders import COLOURS, write_image
from toolkit_deploy.cli import main
from toolkit_deploy.errors import DatasetError
from toolkit_deploy.evaluate import evaluate


def test_perfect_model_on_its_labelled_folder(colour_model: Path, colour_folder: Path) -> None:
    result = evaluate(colour_model, colour_folder)
    assert result["accuracy"] == 1.0 and result["macro_f1"] == 1.0
    assert result["n_samples"] == 9 and result["n_failed"] == 0
    assert result["confusion_matrix"] == [[3, 0, 0], [0, 3, 0], [0, 0, 3]]


def test_mislabelled_and_unreadable_files_are_counted_honestly(colour_model: Path,
                                                               colour_folder: Path) -> None:
    write_image(colour_folder / "red" / "actually_blue.png", COLOURS["blue"])
    (colour_folder / "green" / "broken.png").write_bytes(b"nope")
    result = evaluate(colour_model, colour_folder)
    assert result["n_samples"] == 10 and result["accuracy"] == pytest.approx(0.9)
    assert result["confusion_matrix"][0] == [3, 0, 1]
    assert result["n_failed"] == 1 and result["errors"][0]["path"] == "green/broken.png"


def test_cli_json_has_the_contract_keys(colour_model: Path, colour_folder: Path) -> None:
    result = CliRunner().invoke(main, ["evaluate", str(colour_model), "--data",
                                       str(colour_folder), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    for key in ("accuracy", "macro_f1", "per_class", "confusion_matrix", "n_samples"):
        assert key in data
    table = CliRunner().invoke(main, ["evaluate", str(colour_model), "--data", str(colour_folder)])
    assert "accuracy 1.0000" in table.output and "confusion matrix" in table.output


def test_split_data_uses_test_then_val(colour_model: Path, colour_folder: Path,
                                       tmp_path: Path) -> None:
    root = tmp_path / "split"
    shutil.copytree(colour_folder, root / "train")
    shutil.copytree(colour_folder, root / "val")
    assert evaluate(colour_model, root)["split"] == "val"
    shutil.copytree(colour_folder, root / "test")
    assert evaluate(colour_model, root)["split"] == "test"
    assert evaluate(colour_model, root, split="train")["split"] == "train"


def test_class_folder_that_is_not_a_label(colour_model: Path, colour_folder: Path) -> None:
    write_image(colour_folder / "purple" / "p.png", (150, 0, 150))
    with pytest.raises(DatasetError, match=r"\['purple'\] that are not labels"):
        evaluate(colour_model, colour_folder)

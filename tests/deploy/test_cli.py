import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from toolkit_deploy.cli import TRAINING_COMMANDS, main, training_installed

RUNTIME_COMMANDS = ("score", "inspect", "evaluate")


@pytest.mark.parametrize("command", RUNTIME_COMMANDS)
def test_help_of_runtime_commands(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0 and f"Usage: main {command}" in result.output


def test_top_level_help_lists_every_command() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in (*RUNTIME_COMMANDS, *TRAINING_COMMANDS):
        assert command in result.output


@pytest.mark.parametrize("command", sorted(TRAINING_COMMANDS))
def test_training_commands_say_what_to_install_on_a_runtime_only_install(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--anything"])
    if not training_installed():
        assert result.exit_code == 1
        assert "needs the training stack" in result.output
        assert "pip install -c constraints.txt ./deploy ." in result.output
    else:  # the training stack is installed: the real command answers
        assert "needs the training stack" not in result.output


def test_inspect_json_has_the_contract_keys(colour_model: Path) -> None:
    result = CliRunner().invoke(main, ["inspect", str(colour_model), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    for key in ("labels", "modality", "inputs", "outputs", "preprocess", "parity", "opset",
                "producer"):
        assert key in info
    assert info["labels"] == ["red", "green", "blue"]
    assert info["inputs"] == [{"name": "input", "dtype": "uint8", "shape": ["batch", 8, 8, 3]}]
    assert [o["name"] for o in info["outputs"]] == ["logits", "probabilities"]
    for key in ("passed", "max_abs_diff", "top1_agreement", "n_samples"):
        assert key in info["parity"]
    assert info["opset"] == 18


def test_inspect_text_and_a_file_that_is_not_onnx(colour_model: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["inspect", str(colour_model)])
    assert result.exit_code == 0 and "labels     red, green, blue" in result.output
    assert "parity PASSED" in result.output
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    result = CliRunner().invoke(main, ["inspect", str(junk)])
    assert result.exit_code == 1 and "cannot load" in result.output


def test_evaluating_a_run_folder_needs_the_training_stack(colour_folder: Path,
                                                          tmp_path: Path) -> None:
    if training_installed():
        pytest.skip("the training stack is installed; tests/toolkit cover run evaluation")
    result = CliRunner().invoke(main, ["evaluate", str(tmp_path), "--data", str(colour_folder)])
    assert result.exit_code == 1 and "needs the training stack" in result.output


def test_inspect_shows_escape_sequences_in_labels_as_escapes(tmp_path: Path) -> None:
    import onnx

    from tests.deploy.builders import colour_model_proto

    labels = ("red\x1b]0;pwned\x07", "gr\x1b[2Jeen", "blue\u202e\nfake: line")
    onnx.save(colour_model_proto(labels=labels), tmp_path / "m.onnx")
    result = CliRunner().invoke(main, ["inspect", str(tmp_path / "m.onnx")])
    assert result.exit_code == 0, result.output
    assert not any(c in result.output for c in ("\x1b", "\x07", "\u202e"))
    assert "labels     red\\x1b]0;pwned\\x07, gr\\x1b[2Jeen, blue\\u202e\\nfake: line\n" in (
        result.output)
    assert "\nfake: line" not in result.output
    as_json = CliRunner().invoke(main, ["inspect", str(tmp_path / "m.onnx"), "--json"])
    assert json.loads(as_json.output)["labels"] == list(labels)  # the data itself, unchanged

"""The import boundary is a contract: the runtime never imports torch, and `toolkit --help` imports
neither torch nor onnxruntime. Checked in fresh interpreters, where nothing is preloaded."""

import subprocess
import sys
from pathlib import Path


def fresh(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_scoring_and_evaluating_never_import_torch(colour_model: Path, tmp_path: Path) -> None:
    from tests.deploy.builders import COLOURS, write_image

    for label, colour in COLOURS.items():
        write_image(tmp_path / "data" / label / "x.png", colour)
    out = fresh(
        "import sys\n"
        "from toolkit_deploy import Predictor\n"
        "from toolkit_deploy.evaluate import evaluate\n"
        "from toolkit_deploy.score import score\n"
        f"p = Predictor({str(colour_model)!r})\n"
        f"score(p, {str(tmp_path / 'data')!r}, {str(tmp_path / 'p.csv')!r}, progress=False)\n"
        f"evaluate(p, {str(tmp_path / 'data')!r})\n"
        "from toolkit_deploy.cli import main\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))"
    )
    assert out == "[]"


def test_scoring_and_evaluating_text_never_import_torch(keyword_model: Path,
                                                        tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    table.write_text("text,label\ngoal,sport\n美食,food\n", encoding="utf-8")
    out = fresh(
        "import sys\n"
        "from toolkit_deploy import Predictor\n"
        "from toolkit_deploy.evaluate import evaluate\n"
        "from toolkit_deploy.score import score\n"
        f"p = Predictor({str(keyword_model)!r})\n"
        f"score(p, {str(table)!r}, {str(tmp_path / 'p.csv')!r}, progress=False)\n"
        f"assert evaluate(p, {str(table)!r})['accuracy'] == 1.0\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))"
    )
    assert out == "[]"


def test_cli_help_imports_neither_torch_nor_onnxruntime() -> None:
    out = fresh(
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from toolkit_deploy.cli import main\n"
        "r = CliRunner().invoke(main, ['--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        "for c in ['score', 'inspect', 'evaluate', 'train', 'export', 'data', 'recipes']:\n"
        "    assert CliRunner().invoke(main, [c, '--help']).exit_code in (0, 1)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'onnxruntime'}))"
    )
    assert out == "[]"


def test_no_torch_import_statement_in_the_runtime_source() -> None:
    import toolkit_deploy

    root = Path(toolkit_deploy.__file__).parent
    offenders = [
        f"{p}:{i}" for p in root.rglob("*.py")
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if line.strip().startswith(("import torch", "from torch"))
    ]
    assert offenders == []

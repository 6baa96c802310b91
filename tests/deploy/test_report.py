"""`evaluate --report`: a self-contained, valid HTML page with inlined PNG pictures."""

from __future__ import annotations

import base64
import io
import re
from html.parser import HTMLParser
from pathlib import Path

from click.testing import CliRunner
from PIL import Image

from tests.deploy.builders import COLOURS, write_image
from toolkit_deploy.cli import main
from toolkit_deploy.evaluate import evaluate


class Checker(HTMLParser):
    """Collects the tags and fails on tags closed out of order."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.seen: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.seen.append(tag)
        if tag not in ("meta", "img", "br"):
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack.pop() == tag, f"</{tag}> closes the wrong element"


def check_page(path: Path) -> str:
    page = path.read_text(encoding="utf-8")
    checker = Checker()
    checker.feed(page)
    assert checker.stack == [] and "html" in checker.seen
    assert "src=\"http" not in page and "href=" not in page  # nothing outside the file
    return page


def test_image_report_shows_the_worst_misclassified(colour_model: Path, colour_folder: Path,
                                                    tmp_path: Path) -> None:
    write_image(colour_folder / "red" / "actually_blue.png", COLOURS["blue"])  # mislabelled
    result = CliRunner().invoke(main, ["evaluate", str(colour_model), "--data",
                                       str(colour_folder), "--report", str(tmp_path / "r"),
                                       "--perturb", "blur"])
    assert result.exit_code == 0, result.output
    page = check_page(tmp_path / "r" / "report.html")
    for section in ("Per class", "Confusion matrix", "Most confused", "Robustness",
                    "Worst misclassified", "red/actually_blue.png", "red → blue"):
        assert section in page
    pictures = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(pictures) == 1  # the one misclassified input
    thumbnail = Image.open(io.BytesIO(base64.b64decode(pictures[0])))
    assert thumbnail.size == (96, 96) and thumbnail.getpixel((48, 48))[2] > 150  # blue, enlarged


def test_text_report_escapes_the_texts(keyword_model: Path, tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    table.write_text('text,label\n"<b>goal</b> & pizza pizza",sport\n美食,food\n',
                     encoding="utf-8")
    result = evaluate(keyword_model, table, report=tmp_path / "r")
    page = check_page(Path(result["report"]))
    assert "&lt;b&gt;goal&lt;/b&gt; &amp; pizza pizza" in page and "<b>goal</b>" not in page
    assert "true sport, predicted food" in page

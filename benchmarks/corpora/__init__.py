"""Real benchmark corpora, built from content installed on this machine (Debian and PyPI
packages), never by the toolkit's own demo generators.

Each corpus is one module with `NAME`, `MODALITY`, `REQUIRES` (the Debian packages it reads) and
`build(out: Path) -> dict`, which writes `out/train/<class>/<file>` and `out/test/<class>/<file>`
(the toolkit's split layout) deterministically and returns the manifest written to
`out/corpus.json` (source, classes, files per split and class, package versions). These are
benchmark data, not runtime data: nothing here is used by the toolkit itself.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: Corpus name → module (in benchmarks/corpora/) that builds it.
MODULES: dict[str, str] = {
    "man-en": "man_en",
    "gettext-zh": "gettext_zh",
    "glyphs": "glyphs",
    "icons": "icons",
    "spoken-words": "spoken_words",
    "camera-motion": "camera_motion",
}


def corpus_module(name: str) -> ModuleType:
    if name not in MODULES:
        raise ValueError(f"Unknown corpus {name!r}; valid corpora: {', '.join(MODULES)}.")
    return importlib.import_module(f"corpora.{MODULES[name]}")

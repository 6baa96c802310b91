"""Real English prose: docstrings of this Python's standard library, labelled by the topic of the
module they come from, one UTF-8 `.txt` file per paragraph (nothing is downloaded).

The docstrings change between Python versions (and `os.path` between platforms), so a seed gives
the same files only on the same Python and platform.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import random
import re
from pathlib import Path
from types import ModuleType

from toolkit.demo.folder import check_maker_args

DOCSTRING_TOPICS: dict[str, tuple[str, ...]] = {
    "concurrency": ("threading", "multiprocessing", "multiprocessing.pool",
                    "multiprocessing.managers", "multiprocessing.connection",
                    "multiprocessing.shared_memory", "concurrent.futures",
                    "concurrent.futures.thread", "concurrent.futures.process", "asyncio",
                    "queue", "sched", "subprocess", "selectors", "contextvars", "signal"),
    "files": ("os.path", "pathlib", "shutil", "glob", "fnmatch", "tempfile", "filecmp", "stat",
              "fileinput", "zipfile", "tarfile", "io", "gzip", "bz2", "lzma"),
    "network": ("socket", "ssl", "http.client", "http.server", "http.cookies", "http.cookiejar",
                "urllib.request", "urllib.parse", "urllib.error", "urllib.robotparser",
                "email.message", "email.utils", "email.parser", "email.generator",
                "email.header", "email.headerregistry", "email.policy", "email.charset",
                "email.mime.text", "email.mime.multipart", "email.contentmanager", "smtplib",
                "ftplib", "poplib", "imaplib", "ipaddress", "socketserver", "xmlrpc.client",
                "mimetypes"),
    "numbers": ("math", "cmath", "decimal", "fractions", "statistics", "random", "numbers"),
    "text": ("string", "re", "textwrap", "difflib", "unicodedata", "html", "html.parser",
             "codecs", "shlex", "stringprep", "locale", "gettext"),
}

_MIN_PARAGRAPH = 40  # Characters; shorter paragraphs are headings or one-word stubs.


def _paragraphs(doc: str | None) -> list[str]:
    """Split a docstring into paragraphs with whitespace collapsed.

    Short paragraphs (headings, stubs) and doctest examples (code, not prose) are dropped.
    """
    if not isinstance(doc, str):
        return []
    chunks = re.split(r"\n\s*\n", inspect.cleandoc(doc))
    flat = (" ".join(chunk.split()) for chunk in chunks)
    return [p for p in flat if len(p) >= _MIN_PARAGRAPH and not p.startswith(">>>")]


def _module_docs(module: ModuleType) -> list[str]:
    """Docstring paragraphs of a module, its public classes and functions, and their methods."""
    found = _paragraphs(module.__doc__)
    names = getattr(module, "__all__", None)
    if names is None:
        # Without __all__, a module's own objects are the ones whose __module__ names it, which
        # leaves out what it merely imports.
        names = [n for n in dir(module) if not n.startswith("_")
                 and getattr(getattr(module, n), "__module__", None) == module.__name__]
    for name in sorted(names):
        obj = getattr(module, name, None)
        # Instances (constants, enum members) report their type's docstring; skip them.
        if not (inspect.isclass(obj) or inspect.isroutine(obj)):
            continue
        found += _paragraphs(obj.__doc__)
        if inspect.isclass(obj):
            for attr, member in sorted(vars(obj).items()):
                # Dunders carry generic texts ("Return repr(self).") shared by every topic.
                if attr.startswith("_"):
                    continue
                if isinstance(member, (staticmethod, classmethod)):
                    member = member.__func__
                if inspect.isroutine(member) or isinstance(member, property):
                    found += _paragraphs(member.__doc__)
    return found


@functools.lru_cache(maxsize=1)
def _docstring_pool() -> tuple[dict[str, tuple[str, ...]], tuple[str, ...]]:
    """Return the unique paragraphs of each topic, sorted, and the modules that failed to import.

    A paragraph found under two topics says nothing about either, so it is dropped from both.
    """
    per_topic: dict[str, set[str]] = {}
    missing: list[str] = []
    for topic, modules in DOCSTRING_TOPICS.items():
        found: set[str] = set()
        for name in modules:
            try:
                module = importlib.import_module(name)
            except ImportError:
                # Some builds leave out a module (ssl without OpenSSL); the topic then draws from
                # the others, and make_docstrings names the gap if the topic runs short.
                missing.append(name)
                continue
            found.update(_module_docs(module))
        per_topic[topic] = found
    seen: dict[str, int] = {}
    for found in per_topic.values():
        for paragraph in found:
            seen[paragraph] = seen.get(paragraph, 0) + 1
    pool = {topic: tuple(sorted(p for p in found if seen[p] == 1))
            for topic, found in per_topic.items()}
    return pool, tuple(missing)


def docstring_counts() -> dict[str, int]:
    """Return how many unique paragraphs each of DOCSTRING_TOPICS offers on this Python."""
    return {topic: len(items) for topic, items in _docstring_pool()[0].items()}


def make_docstrings(out: Path, per_class: int = 200, seed: int = 0) -> int:
    """Write standard-library docstring paragraphs labelled by topic, one `.txt` file each.

    Every paragraph (at least 40 characters, whitespace collapsed) of the docstrings of the
    modules in DOCSTRING_TOPICS, their public classes, functions and methods is a sample of the
    module's topic. The layout is `out/<topic>/00000.txt` ...; files are UTF-8 with no trailing
    newline. The texts come from the running Python, so another Python version writes other
    files; on one Python, the same seed writes byte-identical files.

    Args:
        out: Folder to create; it must not exist or be empty.
        per_class: Number of paragraphs for each topic, drawn without repeats.
        seed: Seed of the draw.

    Returns:
        The number of files written.

    Raises:
        ValueError: If per_class or seed is out of range, or a topic has fewer than per_class
            unique paragraphs on this Python.
        FileExistsError: If `out` is a file or a non-empty folder.
    """
    out = check_maker_args("make_docstrings", out, per_class, seed)
    pool, missing = _docstring_pool()
    short = {topic: len(items) for topic, items in pool.items() if len(items) < per_class}
    if short:
        counts = ", ".join(f"{topic}: {n}" for topic, n in short.items())
        gap = f" (modules that failed to import: {', '.join(missing)})" if missing else ""
        raise ValueError(f"per_class={per_class} is more than some topics hold: {counts} unique "
                         f"paragraphs on this Python{gap}. Use per_class <= "
                         f"{min(short.values())}.")

    written = 0
    for topic, items in pool.items():
        rng = random.Random(f"docstrings/{seed}/{topic}")
        # A partial Fisher-Yates shuffle on random() alone, whose stream Python keeps stable.
        order = list(items)
        for i in range(per_class):
            j = i + int(rng.random() * (len(order) - i))
            order[i], order[j] = order[j], order[i]
        folder = out / topic
        folder.mkdir(parents=True, exist_ok=True)
        for i, text in enumerate(order[:per_class]):
            (folder / f"{i:05d}.txt").write_bytes(text.encode("utf-8"))
            written += 1
    return written


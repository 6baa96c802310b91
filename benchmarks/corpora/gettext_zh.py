"""`gettext-zh`: Simplified Chinese translations of program messages, labelled by the program
(gettext domain group) they belong to (text, 8 classes).

Source: the zh_CN gettext message catalogues installed under
/usr/share/locale/zh_CN/LC_MESSAGES/*.mo by Debian packages: git, postgresql-15 and
postgresql-client-15 (server and client tools), gnupg-l10n (GnuPG), coreutils, binutils-common
(binutils, ld, bfd, opcodes), dpkg, apt and libapt-pkg6.0, libglib2.0-data, libgtk2.0-common and
libgdk-pixbuf2.0-common (GLib, GTK 2, GdkPixbuf), and libc-l10n (the GNU C library). Only the
translations (msgstr) are used, never the English msgid.

Classes (domains): git (git), postgresql (postgres, psql, pg_dump, initdb, libpq5, … all
PostgreSQL catalogues), gnupg (gnupg2), coreutils (coreutils), binutils (binutils, ld, bfd,
opcodes), dpkg-apt (dpkg, apt, libapt-pkg6.0), glib-gtk (glib20, gtk20, gtk20-properties,
gdk-pixbuf), libc (libc).

Sample: one UTF-8 `.txt` per sample. Messages are read in msgid order (the order of the
catalogue); a translation is dropped when it has no Han character (format-only strings such as
`%s: %s`, and untranslated ones), and when the same text occurs in two classes (it could not be
told apart). Within a class each distinct text is kept once; consecutive short translations are
joined with a newline until the sample has at least 15 characters, and a long one (help texts)
is cut at a line end to its first ~300 characters. Plural translations use their first form.

Split: within each class the samples are ordered by the SHA-256 of their text and the first 400
are taken; every fourth is a test sample: 300 train + 100 test per class. Deterministic: same
installed catalogues → byte-identical files.
"""

from __future__ import annotations

import gettext
import hashlib
import re
from fnmatch import fnmatch
from pathlib import Path

from corpora.debian import file_owners, versions

NAME = "gettext-zh"
MODALITY = "text"
REQUIRES = ("git", "postgresql-15", "postgresql-client-15", "gnupg-l10n", "coreutils",
            "binutils-common", "dpkg", "apt", "libapt-pkg6.0", "libglib2.0-data",
            "libgtk2.0-common", "libgdk-pixbuf2.0-common", "libc-l10n")

LOCALE = Path("/usr/share/locale/zh_CN/LC_MESSAGES")
#: Class → catalogue file patterns (in LOCALE).
DOMAINS: dict[str, tuple[str, ...]] = {
    "git": ("git.mo",),
    "postgresql": ("postgres-*.mo", "psql-*.mo", "pg_*-*.mo", "initdb-*.mo", "libpq5-*.mo",
                   "pgscripts-*.mo", "plpgsql-*.mo", "ecpg*-*.mo"),
    "gnupg": ("gnupg2.mo",),
    "coreutils": ("coreutils.mo",),
    "binutils": ("binutils.mo", "ld.mo", "bfd.mo", "opcodes.mo"),
    "dpkg-apt": ("dpkg.mo", "apt.mo", "libapt-pkg*.mo"),
    "glib-gtk": ("glib20.mo", "gtk20.mo", "gtk20-properties.mo", "gdk-pixbuf.mo"),
    "libc": ("libc.mo",),
}
PER_CLASS = 400  # samples taken per class; every fourth one is a test sample
MIN_CHARS = 15
MAX_CHARS = 300
SEED = 0  # no RNG: the order is the SHA-256 of the sample text; recorded for the manifest
HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def _catalogues(label: str) -> list[Path]:
    return sorted(p for p in LOCALE.iterdir()
                  if any(fnmatch(p.name, pattern) for pattern in DOMAINS[label]))


def _translations(path: Path) -> list[str]:
    """The catalogue's translations with a Han character, in msgid order, first plural form."""
    with path.open("rb") as handle:
        catalog = gettext.GNUTranslations(handle)._catalog  # the parsed msgid → msgstr table
    found = []
    for key in sorted(catalog, key=lambda k: (k, 0) if isinstance(k, str) else k):
        if isinstance(key, tuple) and key[1] != 0:
            continue
        msgid = key[0] if isinstance(key, tuple) else key
        text = catalog[key].strip()
        if msgid and HAN.search(text):
            found.append(text)
    return found


def _cut(text: str) -> str:
    if len(text) <= MAX_CHARS:
        return text
    cut = text.rfind("\n", 0, MAX_CHARS)
    return text[: cut if cut > MAX_CHARS // 2 else MAX_CHARS].rstrip()


def _samples(texts: list[str]) -> list[str]:
    """Distinct texts, short consecutive ones joined until MIN_CHARS, long ones cut."""
    samples, pending = [], ""
    for text in dict.fromkeys(texts):  # distinct, first-seen order
        pending = f"{pending}\n{text}" if pending else text
        if len(pending) >= MIN_CHARS:
            samples.append(_cut(pending))
            pending = ""
    return samples


def build(out: Path) -> dict:
    owners = file_owners(str(LOCALE) + "/")
    catalogues = {label: _catalogues(label) for label in DOMAINS}
    texts = {label: [t for path in paths for t in _translations(path)]
             for label, paths in catalogues.items()}
    classes_of: dict[str, set[str]] = {}
    for label, found in texts.items():
        for text in found:
            classes_of.setdefault(text, set()).add(label)
    files: dict[str, dict[str, int]] = {"train": {}, "test": {}}
    for label, found in texts.items():
        unique = [t for t in found if len(classes_of[t]) == 1]
        samples = sorted(dict.fromkeys(_samples(unique)),
                         key=lambda s: hashlib.sha256(s.encode("utf-8")).hexdigest())
        for i, sample in enumerate(samples[:PER_CLASS]):
            split = "test" if i % 4 == 3 else "train"
            folder = out / split / label
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{i:05d}.txt").write_bytes((sample + "\n").encode("utf-8"))
            files[split][label] = files[split].get(label, 0) + 1
    used = {owners[str(p)] for paths in catalogues.values() for p in paths if str(p) in owners}
    return {
        "source": __doc__.split("\n\n")[1].replace("\n", " "),
        "classes": list(DOMAINS),
        "files": files,
        "packages": versions(used),
        "catalogues": {label: [p.name for p in paths] for label, paths in catalogues.items()},
        "seed": SEED,
    }

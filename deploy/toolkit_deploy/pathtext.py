"""File names as text in tables, summaries and reports, reversibly.

On POSIX a file name is bytes, and not every name is UTF-8 (`bad\\xffname.png`, written by a
Latin-1 tool). Python hands the bytes that are not UTF-8 over as lone surrogates (PEP 383,
`surrogateescape`), which a UTF-8 file cannot hold. A name that is valid UTF-8 is written as it
is; any other is written quoted, in the style of git's quoted paths: between double quotes, with
each byte that is not UTF-8 as `\\xHH`, a lone surrogate that is no byte as `\\uHHHH`, and `\\`
and `"` as `\\\\` and `\\"`. A valid name that starts with `"` is quoted too, so that a quoted
value is never a real name: `path_from_text` turns any table value back into the exact name.
"""

from __future__ import annotations

import re

_QUOTE = '"'
_ESCAPE = re.compile(r'\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|\\|")')


def _is_text(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _escape(char: str) -> str:
    code = ord(char)
    if char in '\\"':
        return "\\" + char
    if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8, as surrogateescape carries it
        return f"\\x{code - 0xDC00:02x}"
    if 0xD800 <= code <= 0xDFFF:
        return f"\\u{code:04x}"
    return char


def path_text(name: str) -> str:
    """`name` as UTF-8 text: itself when it is valid UTF-8 (and does not start with `"`), else
    its quoted form."""
    if _is_text(name) and not name.startswith(_QUOTE):
        return name
    return _QUOTE + "".join(map(_escape, name)) + _QUOTE


def _unescape(match: re.Match) -> str:
    code = match.group(1)
    if code[0] == "x":
        return chr(0xDC00 + int(code[1:], 16))
    if code[0] == "u":
        return chr(int(code[1:], 16))
    return code


def path_from_text(text: str) -> str:
    """The name a table value stands for (the inverse of `path_text`), as a `str` that `open`
    and `os.fsencode` turn back into the original bytes."""
    if len(text) >= 2 and text.startswith(_QUOTE) and text.endswith(_QUOTE):
        return _ESCAPE.sub(_unescape, text[1:-1])
    return text

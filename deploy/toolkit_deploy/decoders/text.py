"""Text: read a file (UTF-8 with or without BOM, or a given encoding) and tokenise it.

The tokenizer is the run's own, stored in the model file's metadata; it normalises, splits, maps
to ids, truncates and pads to the model's fixed length. The result is int64 (max_length,).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from toolkit_deploy.decoders.reading import read_regular, reading
from toolkit_deploy.errors import DecodeError, MissingDependencyError, ModelFormatError, ends_run
from toolkit_deploy.spec import TextPreprocess

EXTENSIONS = (".txt",)
INSTALL = "pip install 'toolkit-deploy[text]'"


def tokenizer_from_json(document: str) -> Any:
    """A `tokenizers.Tokenizer` from its JSON form (raises ImportError naming the extra).

    Raises:
        ModelFormatError: The document is not a tokenizer `tokenizers` can load.
    """
    try:
        from tokenizers import Tokenizer
    except ImportError as e:
        raise MissingDependencyError(f"Text models need the `tokenizers` library: {INSTALL}") from e
    try:
        return Tokenizer.from_str(document)
    except Exception as e:  # tokenizers raises a bare Exception for any bad document
        raise ModelFormatError(
            f"The model's tokenizer (metadata 'toolkit.preprocess', key 'tokenizer') cannot be "
            f"loaded by tokenizers: {str(e)[:300]}. The file was altered or damaged, or needs a "
            "newer tokenizers; export it again."
        ) from e


def check_encoding(encoding: str) -> None:
    """Raise ValueError for an encoding name Python does not know."""
    import codecs

    try:
        info = codecs.lookup(encoding)
    except LookupError as e:
        raise ValueError(f"Unknown text encoding {encoding!r}: {e}.") from e
    if not getattr(info, "_is_text_encoding", True):  # rot13, base64, zlib: bytes↔bytes codecs
        raise ValueError(f"{encoding!r} is a codec but not a text encoding; name the encoding "
                         "of the text (e.g. utf-8, gb18030, latin-1).")


def decode_bytes(data: bytes, encoding: str | None, what: str) -> str:
    """Bytes → str: UTF-8 (a leading BOM is dropped) unless `encoding` is given."""
    try:
        return data.decode(encoding or "utf-8-sig")
    except UnicodeDecodeError as e:
        if encoding:
            raise DecodeError(
                f"{what} is not valid {encoding} (byte {e.start}: {data[e.start:e.start + 4]!r})."
            ) from e
        raise DecodeError(
            f"{what} is not valid UTF-8 (byte {e.start}: {data[e.start:e.start + 4]!r}). Save it "
            "as UTF-8, or name its encoding (e.g. gb18030, latin-1, cp1252) with --encoding "
            "(score, evaluate) or --set data.encoding=NAME (train)."
        ) from e
    except LookupError as e:
        raise ValueError(f"Unknown text encoding {encoding!r}: {e}.") from e


def read_text_file(path: Path, encoding: str | None, max_bytes: int) -> str:
    """The text of a file, refusing non-files, files over `max_bytes` and files whose reading
    would block (`reading.read_regular`)."""
    with reading(path, "a text"):
        data = read_regular(path, "a text", max_bytes, lambda size: (
            f"The file has {size} bytes, over the {max_bytes}-byte limit for one text. Split "
            "it, or raise data.max_bytes in the recipe."))
    return decode_bytes(data, encoding, "The file")


class TextDecoder:
    """Turn a text into the int64 token ids of a `TextPreprocess` spec.

    Accepts a `str` (the text itself), a `pathlib.Path` / `os.PathLike` (a text file), or
    `bytes` (encoded text). Note that a `str` is text, not a path: pass `Path("a.txt")` for files.

    Args:
        spec: The model's text preprocessing.
        encoding: Encoding of files and bytes; default UTF-8 (with or without BOM), strictly.
    """

    modality = "text"
    extensions = EXTENSIONS

    def __init__(self, spec: TextPreprocess, encoding: str | None = None) -> None:
        self.spec = spec
        self.encoding = encoding
        if encoding is not None:
            check_encoding(encoding)  # fails now, not once per file
        self.tokenizer = tokenizer_from_json(spec.tokenizer)

    def read(self, source: Any) -> str:
        """The text of `source`, before tokenisation."""
        if isinstance(source, str):
            return source
        if isinstance(source, os.PathLike):
            return read_text_file(Path(source), self.encoding, self.spec.max_bytes)
        if isinstance(source, (bytes, bytearray, memoryview)):
            if len(source) > self.spec.max_bytes:
                raise DecodeError(f"The text has {len(source)} bytes, over the limit of "
                                  f"{self.spec.max_bytes}.")
            return decode_bytes(bytes(source), self.encoding, "The given bytes")
        raise TypeError(
            "A text input must be a str (the text), a pathlib.Path (a file) or bytes. "
            f"Got {type(source).__name__}."
        )

    def _check(self, text: str) -> str:
        if not text.strip():
            raise DecodeError("The text is empty (or only whitespace); nothing to classify.")
        if len(text) > self.spec.max_bytes:
            raise DecodeError(f"The text has {len(text)} characters, over the limit of "
                              f"{self.spec.max_bytes}.")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:
            # A lone surrogate (e.g. "\ud800" escaped in JSON) is a str but not Unicode text;
            # tokenizers rejects the whole batch it is in with a TypeError.
            raise DecodeError(
                f"The text holds {text[e.start]!r} at character {e.start}, a lone surrogate "
                "that is not valid Unicode; fix the text (it often comes from a JSON \\u "
                "escape of half an emoji)."
            ) from e
        return text

    def _ids(self, encodings: list) -> np.ndarray:
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        if ids.shape[1:] != (self.spec.max_length,):
            raise DecodeError(
                f"The tokenizer gave {ids.shape[1:]} ids, not the model's {self.spec.max_length}; "
                "its padding/truncation settings were altered."
            )
        return ids

    def tokenize(self, text: str) -> np.ndarray:
        """Token ids of a text: int64 (max_length,), truncated and padded."""
        return self._ids([self.tokenizer.encode(self._check(text))])[0]

    def __call__(self, source: Any) -> np.ndarray:
        return self.tokenize(self.read(source))

    def decode_many(self, sources: list[Any]) -> list[np.ndarray | BaseException]:
        """Decode several sources at once: each is read on its own (a bad one gives its
        exception), the good ones are tokenised in one `encode_batch` call, which costs a
        fraction of one call per text. When that call fails (a model's hostile split regex
        makes tokenizers panic on some texts), each text is tokenised alone, so the failure is
        the error of the texts that cause it only."""
        results: list[np.ndarray | BaseException] = []
        texts, where = [], []
        for source in sources:
            try:
                texts.append(self._check(self.read(source)))
                where.append(len(results))
                results.append(np.empty(0))
            except BaseException as e:  # see ends_run: a PanicException is one
                if ends_run(e):
                    raise
                results.append(e)
        if not texts:
            return results
        try:
            batch = list(self._ids(self.tokenizer.encode_batch(texts)))
        except BaseException as e:  # a Rust panic derives from BaseException
            if ends_run(e):
                raise
            batch = [self._tokenize_alone(text) for text in texts]
        for i, ids in zip(where, batch, strict=True):
            results[i] = ids
        return results

    def _tokenize_alone(self, text: str) -> np.ndarray | BaseException:
        try:
            return self.tokenize(text)
        except BaseException as e:  # as in decode_many
            if ends_run(e):
                raise
            return e

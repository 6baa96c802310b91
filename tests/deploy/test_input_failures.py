"""Inputs that ended whole runs (issue 17): a malformed EXIF block, strip-shaped images, any
exception a decoder library raises, a tokenizer that panics, files whose opening or reading
blocks, decoders stuck in threads, long audio in one ONNX Runtime call, formats outside the
README's list, and video workers orphaned by a killed scorer. Each is now one input's error row
(or, for the strip, a scored row), and the good inputs beside it are scored."""

from __future__ import annotations

import csv
import dataclasses
import os
import resource
import signal
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from tests.deploy.builders import (
    COLOURS,
    colour_clip,
    colour_model_proto,
    keyword_model_proto,
    keyword_tokenizer_json,
    write_image,
    write_sine,
    write_video,
)
from tests.deploy.crashing import HANG_SECONDS, RAISED, RaisingImageDecoder
from tests.deploy.processes import run, toolkit
from toolkit_deploy.cli import EXIT_INTERRUPTED, EXIT_PARTIAL
from toolkit_deploy.errors import DecodeError, ModelFormatError
from toolkit_deploy.evaluate import evaluate
from toolkit_deploy.pipeline import predict_arrays, predict_files
from toolkit_deploy.predictor import Predictor
from toolkit_deploy.score import score
from toolkit_deploy.spec import ImagePreprocess, ModelSpec
from toolkit_deploy.tablewriter import partial_paths

REPO = Path(__file__).parents[2]


def rows_of(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return {row["path"]: row for row in csv.DictReader(f)}


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(width: int, height: int, rgb: tuple[int, int, int],
              chunks: tuple[tuple[bytes, bytes], ...] = ()) -> bytes:
    """A real RGB PNG of one colour, written by hand, with extra chunks before its pixels (its
    rows are compressed one at a time: a large image never is in memory)."""
    row, packer = b"\x00" + bytes(rgb) * width, zlib.compressobj(9)
    pixels = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    return (b"\x89PNG\r\n\x1a\n"
            + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + b"".join(png_chunk(kind, data) for kind, data in chunks)
            + png_chunk(b"IDAT", pixels) + png_chunk(b"IEND", b""))


#: EXIF blocks of the issue's fuzzing: a bad TIFF byte order (Pillow raises SyntaxError) and a
#: TIFF header cut short (struct.error).
MALFORMED_EXIF = {"syntax": b"XX\x00\x2a\x00\x00\x00\x08", "struct": b"II*\x00\x08\x00"}


def good_images(folder: Path) -> None:
    for label, colour in COLOURS.items():
        write_image(folder / f"{label}.png", colour)


# --- 1. a malformed EXIF block ---------------------------------------------------------------


def test_a_malformed_exif_block_is_that_images_error_row(colour_model: Path,
                                                         tmp_path: Path) -> None:
    folder = tmp_path / "in"
    good_images(folder)
    for name, exif in MALFORMED_EXIF.items():
        (folder / f"exif_{name}.png").write_bytes(png_bytes(16, 16, (200, 30, 30),
                                                            ((b"eXIf", exif),)))
    out = tmp_path / "p.csv"
    result = run(toolkit("score", colour_model, folder, "--out", out, "-q"), timeout=60)
    assert result.returncode == EXIT_PARTIAL, result.stderr
    rows = rows_of(out)
    assert {p: r["label"] for p, r in rows.items()} == {
        "blue.png": "blue", "exif_struct.png": "", "exif_syntax.png": "", "green.png": "green",
        "red.png": "red"}
    assert rows["exif_syntax.png"]["error"].startswith(
        "DecodeError: The image's EXIF metadata is malformed (SyntaxError: not a TIFF file")
    assert "(error: unpack requires" in rows["exif_struct.png"]["error"]

    predictor = Predictor(colour_model)
    with pytest.raises(DecodeError, match="EXIF metadata is malformed"):
        predictor.predict(folder / "exif_syntax.png")
    assert predictor.predict(folder / "red.png") == ["red"]

    labelled = tmp_path / "labelled"
    for label, colour in COLOURS.items():
        write_image(labelled / label / "a.png", colour)
    os.replace(folder / "exif_syntax.png", labelled / "red" / "exif.png")
    figures = evaluate(colour_model, labelled)
    assert figures["n_samples"] == 3 and figures["accuracy"] == 1.0
    assert [e["path"] for e in figures["errors"]] == ["red/exif.png"]


# --- 2. strip-shaped images --------------------------------------------------------------------


@pytest.fixture
def crop_model(tmp_path: Path) -> Path:
    """The colour model at 64×64, resized by `crop` (scale the short side, crop the long)."""
    proto = colour_model_proto(size=64)
    spec = ModelSpec.from_metadata({p.key: p.value for p in proto.metadata_props})
    spec = dataclasses.replace(spec, preprocess=ImagePreprocess(64, 64, resize="crop"))
    helper.set_model_props(proto, spec.to_metadata())
    path = tmp_path / "crop.onnx"
    onnx.save(proto, path)
    return path


def address_space(limit: int) -> Callable[[], None]:
    """A `preexec_fn`: the command may map at most `limit` bytes (RLIMIT_AS), so that a run
    that would take gigabytes fails with MemoryError rather than weigh on the machine."""
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return apply


#: A score of a few images maps ~350 MiB here (libraries, ONNX Runtime, thread stacks): room
#: enough for them, not for gigabytes; and room for them, not for another 192 MB.
SCORE_ADDRESS_SPACE, OOM_ADDRESS_SPACE = 1024 * 2**20, 480 * 2**20


def test_strip_shaped_images_are_scored_in_bounded_memory(crop_model: Path,
                                                          tmp_path: Path) -> None:
    folder = tmp_path / "in"
    good_images(folder)
    # 6 KB each; resized whole before the crop, 2,000,000×1 became 128,000,000×64 pixels.
    (folder / "wide.png").write_bytes(png_bytes(2_000_000, 1, (200, 30, 30)))
    (folder / "tall.png").write_bytes(png_bytes(1, 2_000_000, (30, 30, 200)))
    out = tmp_path / "p.csv"
    result = subprocess.run(
        toolkit("score", crop_model, folder, "--out", out, "--workers", "2", "-q"),
        preexec_fn=address_space(SCORE_ADDRESS_SPACE), capture_output=True, text=True,
        timeout=60, env={**os.environ, "MALLOC_ARENA_MAX": "2"})
    assert result.returncode == 0, result.stderr
    assert {p: (r["label"], r["error"]) for p, r in rows_of(out).items()} == {
        "blue.png": ("blue", ""), "green.png": ("green", ""), "red.png": ("red", ""),
        "tall.png": ("blue", ""), "wide.png": ("red", "")}
    # The crop is the middle of the strip, as a full resize and crop gives it.
    strip = np.zeros((1, 3000, 3), np.uint8)
    strip[:, 1000:2000] = 255
    decoded = Predictor(crop_model).decode(strip)
    assert decoded.shape == (64, 64, 3) and decoded.min() == 255


def test_an_image_that_runs_out_of_memory_is_that_images_error_row(crop_model: Path,
                                                                   tmp_path: Path) -> None:
    folder = tmp_path / "in"
    good_images(folder)
    # 8000×8000 is within the 64 MP cap, but its 192 MB of pixels do not fit the address space.
    (folder / "huge.png").write_bytes(png_bytes(8000, 8000, (200, 30, 30)))
    out = tmp_path / "p.csv"
    result = subprocess.run(
        toolkit("score", crop_model, folder, "--out", out, "--workers", "1", "-q"),
        preexec_fn=address_space(OOM_ADDRESS_SPACE), capture_output=True,
        text=True, timeout=60, env={**os.environ, "MALLOC_ARENA_MAX": "1"})
    assert result.returncode == EXIT_PARTIAL, result.stderr
    rows = rows_of(out)
    assert [rows[f"{label}.png"]["label"] for label in COLOURS] == list(COLOURS)
    assert "memory" in rows["huge.png"]["error"].lower(), rows["huge.png"]["error"]


# --- 3. whatever a decoder library raises ----------------------------------------------------


def test_any_exception_a_decoder_raises_is_that_inputs_row(colour_model: Path,
                                                           tmp_path: Path) -> None:
    folder = tmp_path / "in"
    good_images(folder)
    for stem in RAISED:
        write_image(folder / f"{stem}.png", COLOURS["red"])
    predictor = Predictor(colour_model)
    predictor.decoder = RaisingImageDecoder(predictor.spec.preprocess)
    out = tmp_path / "p.csv"
    summary = score(predictor, folder, out, batch_size=4, workers=2, progress=False)
    assert summary.n_failed == len(RAISED)
    rows = rows_of(out)
    assert [rows[f"{label}.png"]["label"] for label in COLOURS] == list(COLOURS)
    for stem, raised in RAISED.items():
        error = rows[f"{stem}.png"]["error"]
        assert error.startswith(f"{type(raised).__name__}: "), error
        assert str(raised) in error or stem == "memory", error
    assert rows["memory.png"]["error"] == "MemoryError: decoding this input ran out of memory"
    for stem in RAISED:  # and Predictor says DecodeError, whatever the library raised
        with pytest.raises(DecodeError, match=type(RAISED[stem]).__name__):
            predictor.predict(folder / f"{stem}.png")


class _FatalDecoder(RaisingImageDecoder):
    """Raises what must stop a run: a damaged model's error, or the user's Ctrl-C."""

    def __call__(self, source: object) -> np.ndarray:
        stem = Path(str(source)).stem
        if stem == "model":
            raise ModelFormatError("the model's tokenizer cannot be loaded")
        if stem == "interrupt":
            raise KeyboardInterrupt
        return super().__call__(source)


@pytest.mark.parametrize("stem, error", [("model", ModelFormatError),
                                         ("interrupt", KeyboardInterrupt)])
def test_only_the_toolkits_own_fatal_errors_stop_a_run(colour_model: Path, tmp_path: Path,
                                                       stem: str, error: type) -> None:
    path = write_image(tmp_path / f"{stem}.png", COLOURS["red"])
    predictor = Predictor(colour_model)
    predictor.decoder = _FatalDecoder(predictor.spec.preprocess)
    with pytest.raises(error):
        list(predict_files(predictor, [path], workers=1))


def hostile_tokenizer_model(path: Path) -> Path:
    """The keyword model, whose tokenizer first splits on `(a+)+b`: on a long run of `a`s not
    followed by `b`, Oniguruma gives up (retry-limit-in-match) and tokenizers panics."""
    from tokenizers import Regex, Tokenizer, pre_tokenizers

    tokenizer = Tokenizer.from_str(keyword_tokenizer_json())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex("(a+)+b"), "isolated"), pre_tokenizers.BertPreTokenizer()])
    proto = keyword_model_proto()
    spec = ModelSpec.from_metadata({p.key: p.value for p in proto.metadata_props})
    spec = dataclasses.replace(spec, preprocess=dataclasses.replace(
        spec.preprocess, tokenizer=tokenizer.to_str()))
    helper.set_model_props(proto, spec.to_metadata())
    onnx.save(proto, path)
    return path


def test_a_tokenizer_panic_on_one_text_is_that_texts_row(tmp_path: Path) -> None:
    model = hostile_tokenizer_model(tmp_path / "hostile.onnx")
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "sport.txt").write_text("What a match, three goals!", encoding="utf-8")
    (folder / "food.txt").write_text("La pizza du café", encoding="utf-8")
    (folder / "panic.txt").write_text("a" * 40 + "c", encoding="utf-8")
    out = tmp_path / "p.csv"
    result = run(toolkit("score", model, folder, "--out", out, "-q"), timeout=60)
    assert result.returncode == EXIT_PARTIAL, result.stderr
    rows = rows_of(out)
    assert {p: r["label"] for p, r in rows.items()} == {
        "food.txt": "food", "panic.txt": "", "sport.txt": "sport"}
    assert rows["panic.txt"]["error"].startswith("PanicException: "), rows["panic.txt"]
    assert "retry-limit-in-match" in rows["panic.txt"]["error"]
    with pytest.raises(DecodeError, match="PanicException"):
        Predictor(model).predict(folder / "panic.txt")


# --- 9. files whose opening or reading blocks; decoders stuck in threads ----------------------


#: Holds a write lease on each file named: anyone else opening one blocks until the holder lets
#: go, which it never does (it ignores the SIGIO that asks), so for lease-break-time (45 s).
LEASE_HOLDER = """
import fcntl, os, signal, sys, time
signal.signal(signal.SIGIO, signal.SIG_IGN)
fds = [os.open(p, os.O_WRONLY) for p in sys.argv[1:]]
for fd in fds:
    fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_WRLCK)
print("held", flush=True)
time.sleep(120)
"""


def write_lease_case(folder: Path, modality: str) -> tuple[Path, dict[str, str]]:
    """Good inputs of `modality` and one (`leased.EXT`) to hold a lease on; (it, good labels)."""
    if modality == "image":
        good_images(folder)
        return write_image(folder / "leased.png", COLOURS["red"]), dict(zip(
            [f"{label}.png" for label in COLOURS], COLOURS, strict=True))
    if modality == "text":
        folder.mkdir(parents=True)
        (folder / "sport.txt").write_text("What a match!", encoding="utf-8")
        leased = folder / "leased.txt"
        leased.write_text("La pizza du café", encoding="utf-8")
        return leased, {"sport.txt": "sport"}
    write_sine(folder / "loud.wav", amplitude=0.8, rate=8000)
    return write_sine(folder / "leased.wav", amplitude=0.8, rate=8000), {"loud.wav": "loud"}


@pytest.mark.parametrize("modality, fixture", [("image", "colour_model"),
                                               ("text", "keyword_model"),
                                               ("audio", "loudness_model")])
def test_a_file_whose_opening_blocks_is_an_error_row_not_a_hang(
        modality: str, fixture: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    model = request.getfixturevalue(fixture)
    folder = tmp_path / "in"
    leased, good = write_lease_case(folder, modality)
    holder = subprocess.Popen([sys.executable, "-c", LEASE_HOLDER, leased],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if holder.stdout.readline().strip() != "held":
            pytest.skip(f"no write lease on this file system: {holder.communicate()[1]}")
        out = tmp_path / "p.csv"
        result = run(toolkit("score", model, folder, "--out", out, "-q"), timeout=30)
    finally:
        holder.kill()
        holder.communicate()
    assert result.returncode == EXIT_PARTIAL, result.stderr
    rows = rows_of(out)
    assert {p: r["label"] for p, r in rows.items() if p != leased.name} == good
    assert "would block" in rows[leased.name]["error"], rows[leased.name]


#: `NAME score MODEL ...` of a model package whose decoder (of the model's modality) hangs on
#: files named `hang*`.
HANGING_CLI = """
import sys
from pathlib import Path

from tests.deploy.crashing import HANGING
from toolkit_deploy.packaged import package_cli
from toolkit_deploy.predictor import Predictor


def load(**kwargs):
    predictor = Predictor(sys.argv[1])
    predictor.decoder = HANGING[predictor.modality](predictor.spec.preprocess)
    return predictor


package_cli("hangs", "1.0", load, lambda: Path(sys.argv[1]), "")(sys.argv[2:])
"""


def hanging_score(model: Path, folder: Path, out: Path, *options: object) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", HANGING_CLI, model, "score", folder, "--out",
                             out, "-q", *map(str, options)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("modality, fixture", [("image", "colour_model"),
                                               ("text", "keyword_model"),
                                               ("audio", "loudness_model")])
def test_timeout_stops_waiting_for_a_stuck_thread_decoder(
        modality: str, fixture: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    model = request.getfixturevalue(fixture)
    folder = tmp_path / "in"
    stuck, good = write_lease_case(folder, modality)
    stuck.rename(folder / f"hang{stuck.suffix}")
    out = tmp_path / "p.csv"
    started = time.monotonic()
    process = hanging_score(model, folder, out, "--timeout", 1, "--workers", 2)
    try:
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert time.monotonic() - started < HANG_SECONDS / 4  # it exited, its thread still stuck
    assert process.returncode == EXIT_PARTIAL, stderr
    rows = rows_of(out)
    assert {p: r["label"] for p, r in rows.items() if not p.startswith("hang")} == good
    assert rows[f"hang{stuck.suffix}"]["error"].startswith(
        "DecodeTimeout: decoding this input took longer than 1 s"), rows


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_ends_a_run_stuck_in_a_decoding_thread(keyword_model: Path, tmp_path: Path,
                                                        sig: signal.Signals) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "hang.txt").write_text("What a match!", encoding="utf-8")
    out = tmp_path / "p.csv"
    process = hanging_score(keyword_model, folder, out, "--timeout", 0)  # no limit
    try:
        while not partial_paths(out)[1].exists() and process.poll() is None:
            time.sleep(0.05)  # until the table is open: the decoder is on its way to hang
        time.sleep(0.5)
        stopped = time.monotonic()
        process.send_signal(sig)
        _, stderr = process.communicate(timeout=20)
    finally:
        process.kill()
    assert process.returncode == EXIT_INTERRUPTED, stderr
    assert time.monotonic() - stopped < 10, "the process waited for its stuck thread"


# --- 10. long audio: windows per ONNX Runtime call ---------------------------------------------


class _Counting:
    """A model that is the given Predictor, and records the rows of each ONNX Runtime call."""

    def __init__(self, predictor: Predictor) -> None:
        self.predictor, self.rows = predictor, []
        self.labels, self.path, self.decoder = predictor.labels, predictor.path, predictor.decoder

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.rows.append(len(batch))
        return self.predictor.run(batch)


def test_long_clips_run_at_most_batch_size_windows_per_call(loudness_model: Path,
                                                            tmp_path: Path) -> None:
    # 4.5 s clips in 0.25 s windows 0.125 s apart: 35 windows each, 280 for 8 clips.
    paths = [write_sine(tmp_path / f"{i}.flac", amplitude=0.8 if i % 2 else 0.01, rate=8000,
                        seconds=4.5, fmt="FLAC") for i in range(8)]
    predictor = Predictor(loudness_model)
    counting = _Counting(predictor)
    predictions = list(predict_files(counting, paths, batch_size=8, workers=2))
    assert sum(counting.rows) == 8 * 35 and max(counting.rows) <= 8, counting.rows
    expected = np.stack([predictor.predict_proba(p, batch_size=1)[0] for p in paths])
    np.testing.assert_allclose(np.stack([p.probs for p in predictions]), expected, atol=1e-6)
    assert [p.error for p in predictions] == [""] * 8
    windows = [predictor.decode(p) for p in paths[:2]]
    counting.rows.clear()
    predict_arrays(counting, windows, max_rows=16)
    assert counting.rows == [16] * 4 + [6]


# --- 11. only the README's image formats -------------------------------------------------------


#: The formats the README lists, as Pillow names them.
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF")
EPS = (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\n%%EndComments\n"
       b"0 0 moveto 8 8 lineto stroke showpage\n%%EOF\n")


def test_only_the_image_formats_the_readme_lists_are_opened(colour_model: Path,
                                                           tmp_path: Path) -> None:
    from PIL import Image

    folder = tmp_path / "in"
    folder.mkdir()
    pixels = np.full((12, 20, 3), COLOURS["red"], np.uint8)
    for fmt in FORMATS:  # each accepted format, under a name that does not say so
        Image.fromarray(pixels).save(folder / f"{fmt.lower()}.png", format=fmt)
    (folder / "eps.png").write_bytes(EPS)  # Pillow's EpsImagePlugin would run Ghostscript
    Image.fromarray(pixels).save(folder / "ppm.png", format="PPM")
    Image.fromarray(pixels).save(folder / "ico.png", format="ICO")
    out = tmp_path / "p.csv"
    summary = score(colour_model, folder, out, progress=False)
    rows = rows_of(out)
    assert summary.n_failed == 3
    for fmt in FORMATS:
        assert rows[f"{fmt.lower()}.png"]["label"] == "red", rows[f"{fmt.lower()}.png"]
    for name in ("eps.png", "ppm.png", "ico.png"):
        assert "in one of the formats accepted, PNG, JPEG, BMP, GIF, WEBP, TIFF" in (
            rows[name]["error"]), rows[name]
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "PNG, JPEG, BMP, GIF, WebP and TIFF" in readme


# --- 12. video workers when the scorer is killed -----------------------------------------------


def children(pid: int) -> set[int]:
    """The processes whose parent is `pid`."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has exited; only its parent's wait is missing


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc")
def test_video_workers_exit_when_the_scorer_is_killed(colour_video_model: Path,
                                                      tmp_path: Path) -> None:
    folder = tmp_path / "in"
    write_video(folder / "hang.mp4", colour_clip(COLOURS["red"]))
    out = tmp_path / "p.csv"
    process = hanging_score(colour_video_model, folder, out, "--timeout", 0, "--workers", 2)
    workers: set[int] = set()
    try:
        while not partial_paths(out)[1].exists() and process.poll() is None:
            time.sleep(0.05)  # until the table is open: a worker is on its way to hang
        time.sleep(1.0)
        workers = children(process.pid)  # two workers and the resource tracker
        assert len(workers) >= 2, workers
        process.kill()
        process.wait()
        deadline = time.monotonic() + 10
        while any(map(alive, workers)) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [pid for pid in workers if alive(pid)]
    finally:
        process.kill()
        for pid in children(process.pid) | workers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert not left, f"processes of the killed scorer still alive: {left}"

"""Bad inputs among good ones, for every modality: each good file is scored exactly as in a folder
of good files only, each bad one becomes an error row that names its problem, nothing hangs, and
the command exits with 3 (some inputs failed)."""

from __future__ import annotations

import csv
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tests.deploy.builders import COLOURS, colour_clip, write_image, write_sine, write_video
from tests.deploy.crashing import HANG_SECONDS, HangingVideoDecoder
from tests.deploy.processes import obeying_permissions, require_permissions, run, toolkit
from toolkit_deploy.cli import EXIT_INTERRUPTED, EXIT_PARTIAL
from toolkit_deploy.decoders import create_decoder, decoder_extensions
from toolkit_deploy.files import list_files
from toolkit_deploy.packaged import package_cli
from toolkit_deploy.pipeline import DEFAULT_TIMEOUT, predict_files
from toolkit_deploy.predictor import Predictor
from toolkit_deploy.score import score
from toolkit_deploy.spec import AudioPreprocess
from toolkit_deploy.tablewriter import partial_paths


def rows_of(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return {row["path"]: row for row in csv.DictReader(f)}


def random_bytes(path: Path, n: int = 4096) -> None:
    path.write_bytes(np.random.default_rng(zlib.crc32(path.name.encode())).bytes(n))


def truncated(path: Path, source: Path) -> None:
    """The first half of `source`: an interrupted copy or download."""
    data = source.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def wav_header(rate: int, channels: int, data_bytes: int) -> bytes:
    """The 44-byte header of a 16-bit PCM WAV file whose samples take `data_bytes`."""
    return (b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVEfmt "
            + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * channels * 2, channels * 2,
                          16)
            + b"data" + struct.pack("<I", data_bytes))


def sparse_wav(path: Path, rate: int, channels: int, seconds: float) -> Path:
    """A WAV file of silence whose samples take no disk space (a sparse file): a header, then a
    hole as long as the samples."""
    data_bytes = round(seconds * rate) * channels * 2
    with open(path, "wb") as f:
        f.write(wav_header(rate, channels, data_bytes))
        f.truncate(44 + data_bytes)
    return path


def png_claiming(path: Path, width: int, height: int) -> None:
    """A valid, tiny PNG whose header claims `width` × `height` pixels (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 1024)) + chunk(b"IEND", b""))


def everywhere(folder: Path, modality: str, words: str) -> dict[str, str]:
    """The bad inputs every modality gets: random bytes under each extension its decoder reads
    (an error with `words`), an empty file, a folder named like an input, a FIFO (opening it
    would block forever), a symlink loop and a file no one may read."""
    extensions = decoder_extensions(modality)
    for suffix in extensions:
        random_bytes(folder / f"random{suffix}")
    ext = extensions[0]
    (folder / f"empty{ext}").write_bytes(b"")
    (folder / f"dir{ext}").mkdir()
    os.mkfifo(folder / f"fifo{ext}")
    os.symlink(folder / f"loop_b{ext}", folder / f"loop_a{ext}")
    os.symlink(folder / f"loop_a{ext}", folder / f"loop_b{ext}")
    (folder / f"unreadable{ext}").write_bytes(b"\x00" * 64)
    (folder / f"unreadable{ext}").chmod(0)
    return {f"empty{ext}": "is empty", f"dir{ext}": "is a directory",
            f"fifo{ext}": "not a regular file", f"loop_a{ext}": "symbolic links",
            f"loop_b{ext}": "symbolic links", f"unreadable{ext}": "Permission denied reading",
            **{f"random{suffix}": words for suffix in extensions}}


def good_images(folder: Path) -> None:
    for i, (label, colour) in enumerate(COLOURS.items()):
        write_image(folder / f"{label}.png", colour, (20 + i, 12))
        write_image(folder / "nested" / f"{label}.jpg", colour, (30, 18 + i))


def bad_images(folder: Path) -> dict[str, str]:
    png = write_image(folder.parent / "source.png", COLOURS["red"], (64, 64))
    jpeg = write_image(folder.parent / "source.jpg", COLOURS["red"], (64, 64))
    truncated(folder / "truncated.png", png)
    truncated(folder / "truncated.jpg", jpeg)
    png_claiming(folder / "bomb.png", 40_000, 40_000)  # over Pillow's own hard limit
    png_claiming(folder / "bomb_12k.png", 12_000, 12_000)  # under Pillow's hard limit, over ours
    return {**everywhere(folder, "image", "cannot identify"), "truncated.png": "truncated",
            "truncated.jpg": "truncated", "bomb.png": "decompression bomb",
            "bomb_12k.png": "12000×12000 = 144000000 pixels, over the limit"}


TEXTS = {"sport.txt": "What a match, three goals!", "food.txt": "La pizza du café",
         "chinese.txt": "这家餐厅的美食", "nested/both.txt": "pizza after the match"}


def good_texts(folder: Path) -> None:
    for name, text in TEXTS.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")


def bad_texts(folder: Path) -> dict[str, str]:
    (folder / "blank.txt").write_text("  \n\t \n", encoding="utf-8")
    (folder / "latin1.txt").write_bytes("café, très bon".encode("latin-1"))
    (folder / "truncated.txt").write_bytes("美食餐厅".encode()[:7])  # cut inside a character
    with open(folder / "huge.txt", "wb") as f:  # 50 MB, sparse
        f.truncate(50 * 1024 * 1024)
    return {**everywhere(folder, "text", "not valid UTF-8"),
            "blank.txt": "empty (or only whitespace)", "latin1.txt": "not valid UTF-8",
            "truncated.txt": "not valid UTF-8", "huge.txt": "over the 10000000-byte limit"}


def good_sounds(folder: Path) -> None:
    write_sine(folder / "loud.wav", amplitude=0.8, rate=8000, seconds=1.0)
    write_sine(folder / "loud_stereo.wav", amplitude=0.8, rate=44100, channels=2)
    write_sine(folder / "quiet.flac", amplitude=0.01, rate=16000, fmt="FLAC")
    write_sine(folder / "nested" / "loud.mp3", amplitude=0.8, rate=8000, seconds=2.0,
               fmt="MP3")


def bad_sounds(folder: Path) -> dict[str, str]:
    source = folder.parent / "source"
    truncated(folder / "truncated.wav", write_sine(source / "a.wav", rate=8000, seconds=2.0))
    truncated(folder / "truncated.mp3", write_sine(source / "a.mp3", rate=8000, seconds=2.0,
                                                   fmt="MP3"))
    truncated(folder / "truncated.flac", write_sine(source / "a.flac", rate=8000, seconds=2.0,
                                                    fmt="FLAC"))
    (folder / "header_only.wav").write_bytes(wav_header(8000, 1, 16000))  # its samples: gone
    (folder / "no_samples.wav").write_bytes(wav_header(8000, 1, 0))
    sparse_wav(folder / "ten_hours.wav", 8000, 1, 10 * 3600)  # 576 MB that take no space
    (folder / "forged_rate.wav").write_bytes(wav_header(10_000_000, 1, 1600) + bytes(1600))
    return {**everywhere(folder, "audio", "Cannot decode the file as audio"),
            "truncated.wav": "The WAV file is truncated", "truncated.mp3": "truncated",
            "truncated.flac": "corrupt, truncated", "header_only.wav": "truncated",
            "no_samples.wav": "no samples", "ten_hours.wav": "lasts 36000.0 s, over the limit",
            "forged_rate.wav": "sample rate of 10000000 Hz"}


def good_videos(folder: Path) -> None:
    for (label, colour), ext in zip(COLOURS.items(), (".mp4", ".webm", ".mkv"), strict=True):
        write_video(folder / f"{label}{ext}", colour_clip(colour))
    write_video(folder / "nested" / "red.gif", colour_clip(COLOURS["red"], n=6))


def audio_only_mp4(path: Path) -> None:
    import av

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("aac", rate=8000)
        for i in range(8):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                               layout="mono")
            frame.sample_rate, frame.pts = 8000, i * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def bad_videos(folder: Path) -> dict[str, str]:
    clip = write_video(folder.parent / "source.mp4", colour_clip(COLOURS["red"], n=30))
    truncated(folder / "truncated.mp4", clip)
    audio_only_mp4(folder / "audio_only.mp4")
    return {**everywhere(folder, "video", "Cannot decode the file as video"),
            "truncated.mp4": "corrupt, truncated", "audio_only.mp4": "no video stream"}


#: modality → (its model fixture, writer of good files, writer of bad files → expected errors)
CASES: dict[str, tuple[str, Callable[[Path], None], Callable[[Path], dict[str, str]]]] = {
    "image": ("colour_model", good_images, bad_images),
    "text": ("keyword_model", good_texts, bad_texts),
    "audio": ("loudness_model", good_sounds, bad_sounds),
    "video": ("colour_video_model", good_videos, bad_videos),
}


@pytest.mark.parametrize("modality", CASES)
def test_bad_inputs_are_error_rows_and_good_ones_score_as_in_a_clean_folder(
        modality: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    require_permissions(tmp_path)
    fixture, good, bad = CASES[modality]
    model = request.getfixturevalue(fixture)
    clean, mixed = tmp_path / "clean", tmp_path / "mixed"
    for folder in (clean, mixed):
        folder.mkdir()
        good(folder)
    expected = bad(mixed)
    score(model, clean, tmp_path / "clean.csv", batch_size=4, workers=2, progress=False)
    reference = rows_of(tmp_path / "clean.csv")

    result = run(toolkit("score", model, mixed, "--out", tmp_path / "mixed.csv", "--batch-size",
                         4, "--workers", 2, "-q"), preexec_fn=obeying_permissions)
    assert result.returncode == EXIT_PARTIAL, result.stderr
    rows = rows_of(tmp_path / "mixed.csv")
    assert sorted(rows) == sorted([*reference, *expected])
    for path, row in reference.items():
        assert rows[path] == row, path  # the same label and score, to the last digit
        assert not row["error"] and row["label"]
    for path, words in expected.items():
        assert rows[path]["label"] == rows[path]["score"] == "", path
        assert words.lower() in rows[path]["error"].lower(), (path, rows[path]["error"])
    assert f"{len(expected)} failed" in result.stderr

    # A file deleted after the listing, before it is decoded, is an error row too.
    predictor = Predictor(model)
    listing = list_files(clean, predictor.decoder.extensions)
    listing.files[-1].unlink()
    predictions = list(predict_files(predictor, listing.files, batch_size=4, workers=2))
    assert predictions[-1].probs is None and "File not found" in predictions[-1].error
    assert all(p.probs is not None for p in predictions[:-1])


def test_a_stuck_video_decoder_is_stopped_and_the_run_goes_on(colour_video_model: Path,
                                                              tmp_path: Path) -> None:
    folder = tmp_path / "in"
    for label, colour in COLOURS.items():
        write_video(folder / f"{label}.mp4", colour_clip(colour))
    for name in ("hang_1.mp4", "hang_2.mp4"):  # in one batch, between good ones
        write_video(folder / name, colour_clip(COLOURS["red"]))

    def load(**kwargs: object) -> Predictor:
        predictor = Predictor(colour_video_model)
        predictor.decoder = HangingVideoDecoder(predictor.spec.preprocess)
        return predictor

    cli = package_cli("clips", "1.0", load, lambda: colour_video_model, "")
    started = time.monotonic()
    result = CliRunner().invoke(cli, ["score", str(folder), "--out", str(tmp_path / "p.csv"),
                                      "--timeout", "2", "--workers", "2", "--batch-size", "2",
                                      "-q"])
    assert time.monotonic() - started < HANG_SECONDS  # it did not wait for the stuck decoder
    assert result.exit_code == EXIT_PARTIAL, result.output
    rows = rows_of(tmp_path / "p.csv")
    assert {path: row["label"] for path, row in rows.items()} == {
        "blue.mp4": "blue", "green.mp4": "green", "hang_1.mp4": "", "hang_2.mp4": "",
        "red.mp4": "red"}
    for name in ("hang_1.mp4", "hang_2.mp4"):
        assert rows[name]["error"].startswith(
            "DecodeTimeout: decoding this input took longer than 2 s"), rows[name]["error"]


#: `NAME score ...` of a model package whose video decoder hangs on files named `hang*`.
HANGING_CLI = """
import sys
from pathlib import Path

from tests.deploy.crashing import HangingVideoDecoder
from toolkit_deploy.packaged import package_cli
from toolkit_deploy.predictor import Predictor


def load(**kwargs):
    predictor = Predictor(sys.argv[1])
    predictor.decoder = HangingVideoDecoder(predictor.spec.preprocess)
    return predictor


package_cli("clips", "1.0", load, lambda: Path(sys.argv[1]), "")(sys.argv[2:])
"""


def test_ctrl_c_while_a_video_decoder_is_stuck_stops_at_once(colour_video_model: Path,
                                                             tmp_path: Path) -> None:
    folder = tmp_path / "in"
    write_video(folder / "hang.mp4", colour_clip(COLOURS["red"]))
    out = tmp_path / "p.csv"
    process = subprocess.Popen(
        [sys.executable, "-c", HANGING_CLI, colour_video_model, "score", folder, "--out", out,
         "--timeout", "0", "-q"], cwd=Path(__file__).parents[2], stderr=subprocess.PIPE,
        text=True)
    try:
        while not partial_paths(out)[1].exists() and process.poll() is None:
            time.sleep(0.05)  # until the table is open: the decoder is on its way to hang
        time.sleep(1.0)
        stopped = time.monotonic()
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=HANG_SECONDS * 2)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == EXIT_INTERRUPTED, stderr
    assert time.monotonic() - stopped < HANG_SECONDS / 2  # the stuck worker was killed


def test_the_timeout_option_is_documented_with_its_default() -> None:
    from toolkit_deploy.cli import main

    result = CliRunner().invoke(main, ["score", "--help"], terminal_width=200)
    assert "--timeout SECONDS" in result.output
    assert f"[default: {DEFAULT_TIMEOUT:g}]" in " ".join(result.output.split())


def test_a_wav_with_1024_channels_is_read_in_one_channels_memory(tmp_path: Path) -> None:
    import tracemalloc

    # 1024 channels × 4 s at 8 kHz: 64 MiB of (sparse) 16-bit samples, 128 MiB as float32.
    path = sparse_wav(tmp_path / "wide.wav", 8000, 1024, 4.0)
    decoder = create_decoder("audio", AudioPreprocess(
        sample_rate=8000, window=0.5, hop=0.5, n_fft=256, hop_length=80, n_mels=16, f_max=4000.0,
        max_seconds=5.0))
    tracemalloc.start()
    try:
        windows = decoder(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert windows.shape == (8, 4000) and not windows.any()  # silence, in 0.5 s windows
    assert peak < 32 * 2**20, f"decoding took {peak / 2**20:.0f} MiB at its peak"

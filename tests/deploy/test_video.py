"""Video in the runtime: every container decoded, frame sampling, caps, bad files, isolation."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tests.deploy.builders import COLOURS, CONTAINERS, colour_clip, write_video
from tests.deploy.crashing import CrashingVideoDecoder
from toolkit_deploy.cli import EXIT_PARTIAL, main
from toolkit_deploy.decoders import create_decoder
from toolkit_deploy.errors import DecodeError
from toolkit_deploy.predictor import Predictor
from toolkit_deploy.score import score
from toolkit_deploy.spec import VideoPreprocess


def ramp(n: int = 20, step: int = 10) -> list[np.ndarray]:
    """Frames whose brightness is `step` × their index (a sampled frame tells its index)."""
    return [np.full((24, 32, 3), step * i, np.uint8) for i in range(n)]


def decoder(**kwargs):
    spec = {"frames": 5, "height": 16, "width": 16, "resize": "stretch", **kwargs}
    return create_decoder("video", VideoPreprocess(**spec))


@pytest.mark.parametrize("suffix, codec", [*CONTAINERS.items(), (".webm", "libvpx")],
                         ids=[*CONTAINERS, ".webm-vp8"])
def test_every_container_gives_the_same_frames(tmp_path: Path, suffix: str, codec: str) -> None:
    path = write_video(tmp_path / f"ramp{suffix}", ramp(), codec=codec)
    frames = decoder()(path)
    assert frames.dtype == np.uint8 and frames.shape == (5, 16, 16, 3)
    # Uniform sampling: the middle frames of 5 equal parts of 20, whatever the container says.
    indices = frames.mean(axis=(1, 2, 3)) / 10
    np.testing.assert_allclose(indices, [2, 6, 10, 14, 18], atol=0.6)


def test_only_the_frames_needed_are_decoded(tmp_path: Path) -> None:
    # 40 frames, 2 wanted (frames 10 and 30): decoding stops at frame 30, which is no truncation.
    path = write_video(tmp_path / "long.mp4", ramp(40, step=5))
    np.testing.assert_allclose(decoder(frames=2)(path).mean(axis=(1, 2, 3)) / 5, [10, 30],
                               atol=0.6)


def test_fps_sampling_and_short_clips(tmp_path: Path) -> None:
    path = write_video(tmp_path / "ramp.mkv", ramp(20), fps=10, codec="ffv1")  # lossless, 2 s
    frames = decoder(frames=6, sampling="fps", fps=4.0)(path)
    # 4 frames per second from the start: 0, 0.25, 0.5 ... → frames 0, 2, 5, 7, 10, 12.
    assert (frames.mean(axis=(1, 2, 3)) / 10).tolist() == [0, 2, 5, 7, 10, 12]
    short = decoder(frames=6, sampling="fps", fps=10.0)(
        write_video(tmp_path / "short.mkv", ramp(3), codec="ffv1"))
    assert (short.mean(axis=(1, 2, 3)) / 10).tolist() == [0, 1, 2, 2, 2, 2]  # last one repeated


def test_bytes_and_resizing_use_the_image_code(tmp_path: Path) -> None:
    from toolkit_deploy.decoders.image import ImageDecoder

    frames = [np.random.default_rng(i).integers(0, 255, (24, 32, 3), dtype=np.uint8)
              for i in range(4)]
    path = write_video(tmp_path / "noise.mkv", frames, codec="ffv1")
    crop = decoder(frames=4, resize="crop")
    got = crop(path)
    np.testing.assert_array_equal(crop(path.read_bytes()), got)
    image = ImageDecoder(crop.spec.frame_spec())
    for frame, original in zip(got, frames, strict=True):
        np.testing.assert_array_equal(frame, image(original))


def test_bad_videos_are_clear_errors(tmp_path: Path) -> None:
    import soundfile as sf

    sf.write(tmp_path / "sound.mp4", np.zeros(8000, np.float32), 8000, format="WAV")
    with pytest.raises(DecodeError, match=r"has no video stream \(streams: audio\)"):
        decoder()(tmp_path / "sound.mp4")
    good = write_video(tmp_path / "good.mp4", ramp(30, step=5)).read_bytes()
    (tmp_path / "cut.mp4").write_bytes(good[: len(good) // 2])
    with pytest.raises(DecodeError):
        decoder()(tmp_path / "cut.mp4")
    (tmp_path / "junk.webm").write_bytes(b"\x1a\x45\xdf\xa3" + bytes(range(256)) * 4)
    with pytest.raises(DecodeError, match="Cannot decode the file as video"):
        decoder()(tmp_path / "junk.webm")
    (tmp_path / "empty.avi").write_bytes(b"")
    with pytest.raises(DecodeError, match="empty"):
        decoder()(tmp_path / "empty.avi")


def test_caps_refuse_absurd_videos(tmp_path: Path) -> None:
    path = write_video(tmp_path / "v.mp4", ramp(30, step=5), fps=10)  # 32×24, 3 s, 30 frames
    with pytest.raises(DecodeError, match=r"32×24 = 768 pixels, over the limit of 500"):
        decoder(max_pixels=500)(path)
    with pytest.raises(DecodeError, match=r"lasts 3.0 s, over the limit of 2 s"):
        decoder(max_seconds=2.0)(path)
    with pytest.raises(DecodeError, match="30 frames, over the limit of 25"):
        decoder(max_frames=25)(path)
    webm = write_video(tmp_path / "v.webm", ramp(30, step=5))  # no frame count in the header
    with pytest.raises(DecodeError, match="more than 25 frames"):
        decoder(max_frames=25)(webm)


def test_score_videos_in_worker_processes(colour_video_model: Path, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    for (label, colour), suffix in zip(COLOURS.items(), (".mp4", ".webm", ".gif"), strict=True):
        write_video(folder / f"{label}{suffix}", colour_clip(colour))
    (folder / "broken.mkv").write_bytes(b"\x1a\x45\xdf\xa3" + bytes(500))
    out = tmp_path / "p.csv"
    result = CliRunner().invoke(main, ["score", str(colour_video_model), str(folder), "--out",
                                       str(out), "-q"])
    assert result.exit_code == EXIT_PARTIAL, result.output
    with open(out, newline="") as f:
        rows = {r["path"]: r for r in csv.DictReader(f)}
    assert {p: r["label"] for p, r in rows.items()} == {
        "blue.gif": "blue", "broken.mkv": "", "green.webm": "green", "red.mp4": "red"}
    assert rows["broken.mkv"]["error"].startswith("DecodeError: ")


def test_a_decoder_crash_costs_one_row_not_the_run(colour_video_model: Path,
                                                    tmp_path: Path) -> None:
    folder = tmp_path / "in"
    for i, (label, colour) in enumerate(COLOURS.items()):
        write_video(folder / f"{i}_{label}.mp4", colour_clip(colour))
    write_video(folder / "crash.mp4", colour_clip((9, 9, 9)))
    predictor = Predictor(colour_video_model)
    predictor.decoder = CrashingVideoDecoder(predictor.spec.preprocess)
    summary = score(predictor, folder, tmp_path / "p.csv", batch_size=2, workers=2,
                    progress=False)
    with open(tmp_path / "p.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["path"] for r in rows] == ["0_red.mp4", "1_green.mp4", "2_blue.mp4", "crash.mp4"]
    assert [r["label"] for r in rows] == ["red", "green", "blue", ""]
    assert rows[3]["error"].startswith("DecoderCrash: the decoding process died")
    assert summary.n_failed == 1


SCRIPT = """import sys
from toolkit_deploy.score import score
{guard}print(score(sys.argv[1], sys.argv[2], sys.argv[3], progress=False).n_failed)
"""


def test_score_from_a_script_workers_cannot_import_is_a_clear_error(colour_video_model: Path,
                                                                    tmp_path: Path) -> None:
    """Spawned decoding workers import the caller's main module: from standard input they
    cannot, and an unguarded script re-runs its scoring in them. Each is one clear error, not
    every file blamed as malformed."""
    import subprocess
    import sys

    write_video(tmp_path / "in" / "red.mp4", colour_clip(COLOURS["red"]))
    args = [str(colour_video_model), str(tmp_path / "in")]

    def run(how: str, guard: str, out: str) -> subprocess.CompletedProcess:
        code = SCRIPT.format(guard=guard)
        if how == "stdin":
            return subprocess.run([sys.executable, "-", *args, str(tmp_path / out)], input=code,
                                  capture_output=True, text=True, timeout=120, cwd=tmp_path)
        (tmp_path / f"{out}.py").write_text(code, encoding="utf-8")
        return subprocess.run([sys.executable, str(tmp_path / f"{out}.py"), *args,
                               str(tmp_path / out)], capture_output=True, text=True,
                              timeout=120, cwd=tmp_path)

    piped = run("stdin", "", "a.csv")
    assert piped.returncode == 1
    assert "WorkerStartError" in piped.stderr and "'<stdin>', not a file they can" in piped.stderr
    assert not list(tmp_path.glob("a.csv*"))  # refused before any file was made
    unguarded = run("file", "", "b.csv")
    assert unguarded.returncode == 1
    assert "died while starting, before any input" in unguarded.stderr
    assert "if __name__ == '__main__':" in unguarded.stderr
    guarded = run("file", "if __name__ == '__main__':\n    ", "c.csv")
    assert guarded.returncode == 0, guarded.stderr
    assert guarded.stdout.strip() == "0"

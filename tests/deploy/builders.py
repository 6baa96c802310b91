"""Real files and model files for the runtime tests (built with onnx and Pillow, no torch)."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from toolkit_deploy import names
from toolkit_deploy.spec import (
    AudioPreprocess,
    ImagePreprocess,
    ModelSpec,
    ParityReport,
    TextPreprocess,
    VideoPreprocess,
)

LABELS = ("red", "green", "blue")
SIZE = 8


def colour_model_proto(
    labels: tuple[str, ...] = LABELS, size: int = SIZE, metadata: dict[str, str] | None = None
) -> onnx.ModelProto:
    """A real toolkit-format model that classifies an image by its dominant colour channel.

    Graph: uint8 N×H×W×3 → float → mean over H, W → ×(10/255) → logits → softmax.
    """
    scale = numpy_helper.from_array(np.array(10.0 / 255.0, np.float32), "scale")
    axes = numpy_helper.from_array(np.array([1, 2], np.int64), "axes")
    nodes = [
        helper.make_node("Cast", [names.INPUT], ["x"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["x", "axes"], ["mean"], keepdims=0),
        helper.make_node("Mul", ["mean", "scale"], [names.LOGITS]),
        helper.make_node("Softmax", [names.LOGITS], [names.PROBABILITIES], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "colour",
        [helper.make_tensor_value_info(names.INPUT, TensorProto.UINT8,
                                       [names.BATCH_AXIS, size, size, 3])],
        [helper.make_tensor_value_info(names.LOGITS, TensorProto.FLOAT, [names.BATCH_AXIS, 3]),
         helper.make_tensor_value_info(names.PROBABILITIES, TensorProto.FLOAT,
                                       [names.BATCH_AXIS, 3])],
        initializer=[scale, axes],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    if metadata is None:
        spec = ModelSpec(
            modality="image", labels=labels,
            preprocess=ImagePreprocess(height=size, width=size, resize="stretch"),
            opset=18, provenance={"recipe": {"name": "test"}},
            parity=ParityReport(True, 64, (1, 16), 1e-7, 1e-6, 1e-8, 1.0, 1e-4, 1e-3, 1.0),
        )
        metadata = spec.to_metadata()
    helper.set_model_props(model, metadata)
    onnx.checker.check_model(model)
    return model


def write_image(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (20, 12),
                fmt: str | None = None) -> Path:
    """A solid-colour image with a little noise, so the dominant channel is its label."""
    rng = np.random.default_rng(zlib.crc32(path.name.encode()))
    pixels = np.clip(np.array(colour) + rng.integers(-10, 10, (size[1], size[0], 3)), 0, 255)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8)).save(path, format=fmt)
    return path


COLOURS = {"red": (200, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 200)}


#: Topic words of the keyword text model; any other word is unknown and votes for nothing.
TOPICS = {"sport": ("goal", "match", "比赛", "球队"), "food": ("pizza", "café", "美食", "餐厅")}
TEXT_LENGTH = 12


def keyword_tokenizer_json(length: int = TEXT_LENGTH) -> str:
    """A word-level tokenizer (NFKC, lowercase, CJK ideographs split) padded/truncated to
    `length`, built directly from a vocabulary: ids 0 [PAD], 1 [UNK], then the topic words (the
    Chinese ones as single characters)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    pieces = []
    for words in TOPICS.values():
        for word in words:
            pieces += list(word) if not word.isascii() and "é" not in word else [word]
    vocab = {"[PAD]": 0, "[UNK]": 1}
    for piece in pieces:
        vocab.setdefault(piece, len(vocab))
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Sequence([
        normalizers.NFKC(),
        normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                   strip_accents=False, lowercase=True),
    ])
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.enable_truncation(length)
    tokenizer.enable_padding(length=length, pad_id=0, pad_token="[PAD]")
    return tokenizer.to_str()


def keyword_model_proto(length: int = TEXT_LENGTH) -> onnx.ModelProto:
    """A real toolkit-format text model: each known token votes for its topic.

    Graph: int64 N×L ids → Gather(votes) → sum over L → logits → softmax.
    """
    from tokenizers import Tokenizer

    document = keyword_tokenizer_json(length)
    vocab = Tokenizer.from_str(document).get_vocab()
    labels = tuple(TOPICS)
    votes = np.zeros((len(vocab), len(labels)), np.float32)
    for k, words in enumerate(TOPICS.values()):
        for word in words:
            for piece in ([word] if word.isascii() or "é" in word else list(word)):
                votes[vocab[piece], k] = 2.0
    nodes = [
        helper.make_node("Gather", ["votes", names.INPUT], ["v"], axis=0),
        helper.make_node("ReduceSum", ["v", "axes"], [names.LOGITS], keepdims=0),
        helper.make_node("Softmax", [names.LOGITS], [names.PROBABILITIES], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "keywords",
        [helper.make_tensor_value_info(names.INPUT, TensorProto.INT64,
                                       [names.BATCH_AXIS, length])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [names.BATCH_AXIS, len(labels)])
         for n in names.OUTPUTS],
        initializer=[numpy_helper.from_array(votes, "votes"),
                     numpy_helper.from_array(np.array([1], np.int64), "axes")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    spec = ModelSpec(
        modality="text", labels=labels,
        preprocess=TextPreprocess(tokenizer=document, max_length=length, pad_id=0,
                                  vocab_size=len(vocab)),
        opset=18, provenance={"recipe": {"name": "test"}},
        parity=ParityReport(True, 64, (1, 16), 1e-7, 1e-6, 1e-8, 1.0, 1e-4, 1e-3, 1.0),
    )
    helper.set_model_props(model, spec.to_metadata())
    onnx.checker.check_model(model)
    return model


#: The loudness model's window: 0.25 s at 8 kHz.
AUDIO_RATE, AUDIO_WINDOW = 8000, 0.25


def loudness_model_proto() -> onnx.ModelProto:
    """A real toolkit-format audio model: `loud` when the window's mean power is over 0.01.

    Graph: float32 N×samples → mean(x²) → logits (±1000·(power - 0.01)) → softmax.
    """
    samples = round(AUDIO_RATE * AUDIO_WINDOW)
    nodes = [
        helper.make_node("Mul", [names.INPUT, names.INPUT], ["squares"]),
        helper.make_node("ReduceMean", ["squares", "axes"], ["power"], keepdims=1),
        helper.make_node("Sub", ["power", "threshold"], ["excess"]),
        helper.make_node("Mul", ["excess", "signs"], [names.LOGITS]),
        helper.make_node("Softmax", [names.LOGITS], [names.PROBABILITIES], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "loudness",
        [helper.make_tensor_value_info(names.INPUT, TensorProto.FLOAT,
                                       [names.BATCH_AXIS, samples])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [names.BATCH_AXIS, 2])
         for n in names.OUTPUTS],
        initializer=[numpy_helper.from_array(np.array([1], np.int64), "axes"),
                     numpy_helper.from_array(np.array(0.01, np.float32), "threshold"),
                     numpy_helper.from_array(np.array([[1000.0, -1000.0]], np.float32),
                                             "signs")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    spec = ModelSpec(
        modality="audio", labels=("loud", "quiet"),
        preprocess=AudioPreprocess(sample_rate=AUDIO_RATE, window=AUDIO_WINDOW, hop=0.125,
                                   n_fft=256, hop_length=80, n_mels=16, f_max=4000.0,
                                   max_seconds=5.0),
        opset=18, provenance={"recipe": {"name": "test"}},
        parity=ParityReport(True, 64, (1, 16), 1e-7, 1e-6, 1e-8, 1.0, 1e-4, 1e-3, 1.0),
    )
    helper.set_model_props(model, spec.to_metadata())
    onnx.checker.check_model(model)
    return model


def write_sine(path: Path, freq: float = 440.0, seconds: float = 0.5, rate: int = 16000,
               amplitude: float = 0.5, channels: int = 1, fmt: str = "WAV",
               subtype: str | None = None) -> Path:
    """A sine wave written with soundfile (stereo: the same sine in both channels)."""
    import soundfile as sf

    t = np.arange(round(seconds * rate)) / rate
    wave = (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    data = np.stack([wave] * channels, axis=1) if channels > 1 else wave
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data, rate, format=fmt, subtype=subtype)
    return path


VIDEO_FRAMES, VIDEO_SIZE = 4, 16


def colour_video_model_proto() -> onnx.ModelProto:
    """A real toolkit-format video model: the dominant colour channel over all frames.

    Graph: uint8 N×T×H×W×3 → float → mean over T, H, W → ×(10/255) → logits → softmax.
    """
    nodes = [
        helper.make_node("Cast", [names.INPUT], ["x"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["x", "axes"], ["mean"], keepdims=0),
        helper.make_node("Mul", ["mean", "scale"], [names.LOGITS]),
        helper.make_node("Softmax", [names.LOGITS], [names.PROBABILITIES], axis=1),
    ]
    shape = [names.BATCH_AXIS, VIDEO_FRAMES, VIDEO_SIZE, VIDEO_SIZE, 3]
    graph = helper.make_graph(
        nodes, "colour_video",
        [helper.make_tensor_value_info(names.INPUT, TensorProto.UINT8, shape)],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [names.BATCH_AXIS, 3])
         for n in names.OUTPUTS],
        initializer=[numpy_helper.from_array(np.array([1, 2, 3], np.int64), "axes"),
                     numpy_helper.from_array(np.array(10.0 / 255.0, np.float32), "scale")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    spec = ModelSpec(
        modality="video", labels=LABELS,
        preprocess=VideoPreprocess(frames=VIDEO_FRAMES, height=VIDEO_SIZE, width=VIDEO_SIZE,
                                   resize="stretch"),
        opset=18, provenance={"recipe": {"name": "test"}},
        parity=ParityReport(True, 64, (1, 16), 1e-7, 1e-6, 1e-8, 1.0, 1e-4, 1e-3, 1.0),
    )
    helper.set_model_props(model, spec.to_metadata())
    onnx.checker.check_model(model)
    return model


#: Container → codec the tests write it with.
CONTAINERS = {".mp4": "libx264", ".webm": "libvpx-vp9", ".avi": "mpeg4", ".mkv": "libx264",
              ".mov": "libx264", ".gif": "gif"}


def write_video(path: Path, frames: list[np.ndarray], fps: int = 10,
                codec: str | None = None) -> Path:
    """Encode RGB uint8 frames with PyAV (a GIF with Pillow) in the container of `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    codec = codec or CONTAINERS[path.suffix]
    if codec == "gif":
        images = [Image.fromarray(f) for f in frames]
        images[0].save(path, save_all=True, append_images=images[1:], duration=1000 // fps,
                       loop=0)
        return path
    import av

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "bgr0" if codec == "ffv1" else "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def colour_clip(colour: tuple[int, int, int], n: int = 12, size: tuple[int, int] = (32, 24)
                ) -> list[np.ndarray]:
    """`n` frames of a solid colour (even sizes: yuv420p needs them)."""
    return [np.full((size[1], size[0], 3), colour, np.uint8) for _ in range(n)]

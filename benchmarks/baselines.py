"""Classic baselines for `real_accuracy.py`: scikit-learn models on hand-made features, each the
strongest we could build for its modality, with its hyper-parameters chosen by cross-validation
on the training files alone (stratified 3-fold; the test files are never seen before scoring).

- text: TF-IDF of word 1–2-grams, of character 1–4-grams within word boundaries (what works for
  Chinese, written without spaces), and of both together, each with sublinear TF; logistic
  regression; features and C chosen by CV.
- image: pixels (standardised) and HOG (scikit-image) of the images as the runtime decodes them
  for the recipe's model; logistic regression; features and C chosen by CV.
- audio: log-mel statistics: per band, the mean, standard deviation, minimum and maximum over
  time of the log-mel spectrogram and of its time difference, at the recipe's 16 kHz / 64 bands;
  standardised; logistic regression with C chosen by CV.
- video: frame statistics: every frame of the recipe's 8 as an 8×8 grey thumbnail, and the
  differences between consecutive thumbnails; standardised; logistic regression with C by CV.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Inverse regularisation strengths tried by cross-validation.
CS = (0.01, 0.1, 1.0, 10.0, 100.0)


@dataclass(frozen=True)
class Baseline:
    accuracy: float
    features: str
    c: float
    seconds: float


def labelled(folder: Path) -> tuple[list[Path], list[int], list[str]]:
    """Files and class indices of `folder/<class>/<file>` (classes sorted), and the classes."""
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    paths, targets = [], []
    for index, name in enumerate(classes):
        for path in sorted((folder / name).rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                paths.append(path)
                targets.append(index)
    return paths, targets, classes


def _select(candidates: dict[str, Callable[[], object]], train_x: dict, train_y: list[int],
            test_x: dict, test_y: list[int]) -> Baseline:
    """Grid-search every (features, C) by 3-fold CV on the training files; refit the best on
    all of them and score it on the test files."""
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    started = time.perf_counter()
    folds = StratifiedKFold(3, shuffle=True, random_state=0)
    best = None
    for name, make in candidates.items():
        search = GridSearchCV(make(), {"logisticregression__C": CS}, cv=folds, n_jobs=1)
        search.fit(train_x[name], train_y)
        if best is None or search.best_score_ > best[0]:
            best = (search.best_score_, name, search)
    _, name, search = best
    accuracy = float(search.score(test_x[name], test_y))
    return Baseline(accuracy, name, float(search.best_params_["logisticregression__C"]),
                    time.perf_counter() - started)


def _lr() -> object:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=3000)


def text_baseline(train: Path, test: Path) -> Baseline:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline, make_union

    from toolkit_deploy.decoders.text import read_text_file

    def texts(folder: Path) -> tuple[list[str], list[int]]:
        paths, targets, _ = labelled(folder)
        return [read_text_file(p, None, 10**7) for p in paths], targets

    def word() -> object:
        return TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)

    def char() -> object:
        return TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), sublinear_tf=True)

    candidates = {
        "word 1-2-grams": lambda: make_pipeline(word(), _lr()),
        "char 1-4-grams": lambda: make_pipeline(char(), _lr()),
        "word 1-2 + char 1-4-grams": lambda: make_pipeline(make_union(word(), char()), _lr()),
    }
    (train_x, train_y), (test_x, test_y) = texts(train), texts(test)
    return _select(candidates, dict.fromkeys(candidates, train_x), train_y,
                   dict.fromkeys(candidates, test_x), test_y)


def _decoded(decoder: object, folder: Path) -> tuple[np.ndarray, list[int]]:
    paths, targets, _ = labelled(folder)
    return np.stack([decoder(p) for p in paths]), targets


def image_baseline(train: Path, test: Path, size: int, channels: int) -> Baseline:
    """On the images as the runtime decodes them for the recipe's model (`size`, `channels`)."""
    from skimage.feature import hog
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from toolkit_deploy.decoders import create_decoder
    from toolkit_deploy.spec import ImagePreprocess

    decoder = create_decoder("image", ImagePreprocess(size, size, channels, mean=(0.5,) * channels,
                                                      std=(0.25,) * channels))
    cell = max(4, size // 8)

    def features(images: np.ndarray) -> dict[str, np.ndarray]:
        pixels = images.reshape(len(images), -1).astype(np.float32) / 255
        grey = images.astype(np.float32).mean(-1) / 255
        hogs = np.stack([hog(g, orientations=9, pixels_per_cell=(cell, cell),
                             cells_per_block=(2, 2)) for g in grey])
        return {"pixels": pixels, "HOG": hogs}

    def scaled_lr() -> object:
        return make_pipeline(StandardScaler(), _lr())

    (train_images, train_y), (test_images, test_y) = (_decoded(decoder, train),
                                                      _decoded(decoder, test))
    candidates = {"pixels": scaled_lr, "HOG": scaled_lr}
    return _select(candidates, features(train_images), train_y, features(test_images), test_y)


def _log_mel(windows: np.ndarray, rate: int, n_fft: int = 512, hop: int = 160,
             n_mels: int = 64) -> np.ndarray:
    """W × frames × n_mels log-mel spectrogram of W waveform windows (numpy, Hann window)."""
    from toolkit.models.audio import mel_filterbank

    frames = 1 + (windows.shape[1] - n_fft) // hop
    index = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    spectrum = np.abs(np.fft.rfft(windows[:, index] * np.hanning(n_fft), axis=-1)) ** 2
    bank = mel_filterbank(rate, n_fft, n_mels, 20.0, rate / 2)  # bins × mels
    return np.log(spectrum @ bank + 1e-6)


def audio_baseline(train: Path, test: Path) -> Baseline:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from toolkit_deploy.decoders import create_decoder
    from toolkit_deploy.spec import AudioPreprocess

    spec = AudioPreprocess()
    decoder = create_decoder("audio", spec)

    def features(folder: Path) -> tuple[np.ndarray, list[int]]:
        paths, targets, _ = labelled(folder)
        rows = []
        for path in paths:
            mel = _log_mel(decoder(path), spec.sample_rate)  # windows × frames × mels
            mel = mel.reshape(-1, mel.shape[-1])
            delta = np.diff(mel, axis=0)
            rows.append(np.concatenate([f(m, axis=0) for m in (mel, delta)
                                        for f in (np.mean, np.std, np.min, np.max)]))
        return np.stack(rows), targets

    (train_x, train_y), (test_x, test_y) = features(train), features(test)
    candidates = {"log-mel statistics": lambda: make_pipeline(StandardScaler(), _lr())}
    return _select(candidates, {"log-mel statistics": train_x}, train_y,
                   {"log-mel statistics": test_x}, test_y)


def video_baseline(train: Path, test: Path, frames: int, size: int) -> Baseline:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from toolkit_deploy.decoders import create_decoder
    from toolkit_deploy.spec import VideoPreprocess

    decoder = create_decoder("video", VideoPreprocess(frames=frames, height=size, width=size))

    def features(folder: Path) -> tuple[np.ndarray, list[int]]:
        clips, targets = _decoded(decoder, folder)  # N × T × H × W × C
        grey = clips.astype(np.float32).mean(-1) / 255
        n, t, h, w = grey.shape
        thumbs = grey.reshape(n, t, 8, h // 8, 8, w // 8).mean((3, 5))  # N × T × 8 × 8
        diffs = np.diff(thumbs, axis=1)
        return np.concatenate([thumbs.reshape(n, -1), diffs.reshape(n, -1)], axis=1), targets

    (train_x, train_y), (test_x, test_y) = features(train), features(test)
    name = "frame thumbnails + differences"
    return _select({name: lambda: make_pipeline(StandardScaler(), _lr())}, {name: train_x},
                   train_y, {name: test_x}, test_y)

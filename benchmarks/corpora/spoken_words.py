"""spoken-words: ten English command words spoken by eSpeak NG voices, in noise, in mixed formats.

Source: the eSpeak NG speech synthesiser (Debian packages `espeak-ng`, `espeak-ng-data`) says each
word with one of the eight English accents that ship as eSpeak voices (`en` = British, `en-us`,
`en-us-nyc`, `en-gb-scotland`, `en-gb-x-rp`, `en-gb-x-gbclan`, `en-gb-x-gbcwmd`, `en-029`) combined
with one of the ~100 voice variants of `espeak-ng-data` (`+m1`…`+m8`, `+f1`…`+f5`,
`+klatt`…`+klatt6`, `+whisper`, `+croak`, `+Storm`, `+grandma`, …: each its own formants, pitch
contour, breathiness or synthesiser), at a random speaking rate (110–230 words/min) and pitch
(15–85). Each clip then gets a random level (peak −18…−3 dBFS), a random lead-in silence and length
(1.0–1.5 s, never longer), and background noise at a random SNR: white, pink or brown noise at 8–30
dB, or at 12–30 dB babble (a sentence of non-command words said by another voice of the same split,
time-reversed so no word in it can be understood, over a faint pink floor). Formats vary as files
in the wild do: mono WAV 16-bit at 16 kHz (30 %), 22.05 kHz (15 %) and 8 kHz (10 %), FLAC 16-bit at
16 kHz (15 %) and 24-bit at 44.1 kHz (5 %), stereo WAV at 16 and 44.1 kHz (10 %, the second channel
slightly delayed and quieter with its own noise), and OGG Vorbis encoded by FFmpeg at 22.05 kHz
mono and 16 kHz stereo (15 %). Resampling from eSpeak's 22.05 kHz uses soxr.

Classes: yes, no, up, down, left, right, on, off, stop, go (the words of Speech Commands' core set).

Sizes: 100 train + 35 test clips per class (1000 + 350 files), about 64 MB.

Split: by voice variant, so the test set holds only speakers never heard in training. The sorted
variant names are shuffled with the corpus seed; the first quarter are test voices, the rest train
voices. Accents, rates, pitches, noises and formats are drawn for every clip independently and
appear in both splits. `clips.csv` beside the splits lists every file with its voice, accent, rate,
pitch, noise, SNR, sample rate, channels and format.

Deterministic: every clip draws from its own generator seeded by (seed, split, class, index), and
eSpeak NG, soundfile's WAV/FLAC writers and FFmpeg's Vorbis (with `-fflags +bitexact`, which fixes
the Ogg serial number libsndfile would draw at random) give the same bytes for the same input.
Builds in 1–2 minutes on two shared cores.
"""

from __future__ import annotations

import csv
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from corpora.debian import versions as debian_versions
from corpora.versions import debian_versions_matching, python_versions

NAME = "spoken-words"
MODALITY = "audio"
REQUIRES = ("espeak-ng", "espeak-ng-data", "ffmpeg")

SEED = 16
WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
#: eSpeak NG's English voices (the mbrola ones need extra packages and are left out).
ACCENTS = ("en", "en-us", "en-us-nyc", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan",
           "en-gb-x-gbcwmd", "en-029")
PER_CLASS = {"train": 100, "test": 35}
TEST_VOICE_FRACTION = 0.25
ESPEAK_RATE = 22050
MAX_SECONDS = 1.5
MIN_SECONDS = 1.0
#: Noise kind → SNR range in dB. Babble is speech-like, so it masks a word at a higher SNR than
#: steady noise does: at 6 dB it swamped the word in spectrograms, at 12 dB the word stands out.
SNR_DB = {"white": (8.0, 30.0), "pink": (8.0, 30.0), "brown": (8.0, 30.0), "babble": (12.0, 30.0)}
NOISES = tuple(SNR_DB)
#: Babble text: no command word in it, and it is played backwards anyway.
BABBLE = ("the weather was fine for a walk along the river this morning, and seven "
          "children came home with apples and bread from the market")


@dataclass(frozen=True)
class Format:
    """How one clip is stored: container, sample rate, channels, sample format."""

    container: str  # "wav", "flac" or "ogg"
    rate: int
    channels: int
    subtype: str  # soundfile subtype; unused for ogg (FFmpeg's libvorbis)
    weight: float


FORMATS = (
    Format("wav", 16000, 1, "PCM_16", 0.30),
    Format("wav", 22050, 1, "PCM_16", 0.15),
    Format("wav", 8000, 1, "PCM_16", 0.10),
    Format("flac", 16000, 1, "PCM_16", 0.15),
    Format("flac", 44100, 1, "PCM_24", 0.05),
    Format("wav", 16000, 2, "PCM_16", 0.05),
    Format("wav", 44100, 2, "PCM_16", 0.05),
    Format("ogg", 22050, 1, "", 0.10),
    Format("ogg", 16000, 2, "", 0.05),
)


def variants() -> list[str]:
    """eSpeak NG's voice variants (`+name`), sorted, as `espeak-ng --voices=variant` lists them."""
    listing = subprocess.run(["espeak-ng", "--voices=variant"], capture_output=True, text=True,
                             check=True).stdout.splitlines()
    names = sorted({line.split()[4].removeprefix("!v/") for line in listing[1:] if line.strip()})
    if len(names) < 20:
        raise RuntimeError(f"espeak-ng lists {len(names)} voice variants; expected about 100 "
                           "(is espeak-ng-data complete?). Reinstall: apt-get install --reinstall "
                           "espeak-ng-data")
    return names


def speak(text: str, voice: str, rate: int, pitch: int, scratch: Path) -> np.ndarray:
    """`text` said by eSpeak NG `voice` at `rate` words/min and `pitch` (0–99), at 22.05 kHz."""
    import soundfile

    wav = scratch / "speech.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(rate), "-p", str(pitch), "-w", str(wav),
                    text], check=True, capture_output=True)
    samples, rate_read = soundfile.read(wav, dtype="float64")
    if rate_read != ESPEAK_RATE:
        raise RuntimeError(f"espeak-ng wrote {rate_read} Hz audio; expected {ESPEAK_RATE} Hz.")
    return samples


def trim(samples: np.ndarray) -> np.ndarray:
    """The voiced part of `samples`: eSpeak pads words with ~0.5 s of silence, which would make
    every word start at the same offset; 10 ms margins keep the onsets and releases intact."""
    loud = np.flatnonzero(np.abs(samples) > 0.02 * np.abs(samples).max())
    margin = ESPEAK_RATE // 100
    return samples[max(loud[0] - margin, 0):loud[-1] + margin]


def resample(samples: np.ndarray, rate: int) -> np.ndarray:
    import soxr

    return samples if rate == ESPEAK_RATE else soxr.resample(samples, ESPEAK_RATE, rate, "HQ")


def coloured_noise(rng: np.random.Generator, n: int, kind: str) -> np.ndarray:
    """Unit-RMS white, pink (1/f power) or brown (1/f²) noise, shaped in the frequency domain."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    exponent = {"white": 0.0, "pink": 0.5, "brown": 1.0}[kind]
    freqs = np.arange(len(spectrum), dtype=np.float64)
    freqs[0] = 1.0  # keeps DC finite; it is removed below
    noise = np.fft.irfft(spectrum / freqs**exponent, n)
    noise -= noise.mean()
    return noise / np.sqrt(np.mean(noise**2))


def mix(word: np.ndarray, noise: np.ndarray, lead: int, length: int, snr_db: float,
        peak: float) -> np.ndarray:
    """`word` at `lead` samples into `length`, scaled to `peak`, plus `noise` at `snr_db` (against
    the word's own RMS, not the clip's, so the SNR does not depend on the silence around it)."""
    word = word * (peak / np.abs(word).max())
    clip = np.zeros(length)
    clip[lead:lead + len(word)] = word
    clip += noise[:length] * np.sqrt(np.mean(word**2)) * 10 ** (-snr_db / 20)
    return clip * min(1.0, 0.99 / np.abs(clip).max())  # never clips after the noise is added


def write(path: Path, clip: np.ndarray, fmt: Format, scratch: Path) -> None:
    import soundfile

    if fmt.container != "ogg":
        soundfile.write(path, clip, fmt.rate, subtype=fmt.subtype, format=fmt.container.upper())
        return
    # libsndfile draws the Ogg stream serial number at random; FFmpeg's bitexact mode fixes it.
    wav = scratch / "clip.wav"
    soundfile.write(wav, clip, fmt.rate, subtype="PCM_16")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), "-c:a", "libvorbis",
                    "-q:a", "4", "-fflags", "+bitexact", "-map_metadata", "-1", str(path)],
                   check=True, capture_output=True)


def make_clip(word: str, voice: str, voices: list[str], rng: np.random.Generator,
              scratch: Path) -> tuple[np.ndarray, Format, dict]:
    """One clip of `word` by variant `voice`, with the other draws (accent, rate, noise, …) from
    `rng`; babble is said by another of `voices` (the same split's, so test stays unheard)."""
    accent = str(rng.choice(ACCENTS))
    rate, pitch = int(rng.integers(110, 231)), int(rng.integers(15, 86))
    fmt = FORMATS[rng.choice(len(FORMATS), p=[f.weight for f in FORMATS])]
    speech = resample(trim(speak(word, f"{accent}+{voice}", rate, pitch, scratch)), fmt.rate)
    speech = speech[:int(0.9 * MAX_SECONDS * fmt.rate)]  # the slowest words are ~0.8 s
    length = int(rng.uniform(max(MIN_SECONDS, len(speech) / fmt.rate + 0.1), MAX_SECONDS)
                 * fmt.rate)
    noise_kind = str(rng.choice(NOISES))
    snr_db = float(rng.uniform(*SNR_DB[noise_kind]))
    peak = 10 ** (rng.uniform(-18.0, -3.0) / 20)
    # Room for the word and for the second channel's delay (< 20 samples) after the lead-in.
    lead = int(rng.uniform(0.0, length - len(speech) - 20))
    channels = []
    for channel in range(fmt.channels):
        if noise_kind == "babble":
            other = str(rng.choice([v for v in voices if v != voice]))
            babble = resample(speak(BABBLE, f"{rng.choice(ACCENTS)}+{other}",
                                    int(rng.integers(150, 231)), int(rng.integers(15, 86)),
                                    scratch), fmt.rate)[::-1]
            start = int(rng.integers(0, len(babble) - length))
            babble = babble[start:start + length]
            # eSpeak's pauses are digital silence; a pink floor 30 dB down fills them, as a room
            # would.
            noise = (babble / max(np.sqrt(np.mean(babble**2)), 1e-6)
                     + 0.03 * coloured_noise(rng, length, "pink"))
        else:
            noise = coloured_noise(rng, length, noise_kind)
        # A second channel is the same voice a little later and quieter, as from a second mic.
        delay, gain = (0, 1.0) if channel == 0 else (int(rng.integers(1, 20)),
                                                     float(rng.uniform(0.6, 1.0)))
        channels.append(mix(speech, noise, lead + delay, length, snr_db, peak * gain))
    clip = channels[0] if fmt.channels == 1 else np.stack(channels, axis=1)
    info = {"voice": voice, "accent": accent, "rate": rate, "pitch": pitch, "noise": noise_kind,
            "snr_db": round(snr_db, 1), "lead_s": round(lead / fmt.rate, 3),
            "seconds": round(length / fmt.rate, 3), "sample_rate": fmt.rate,
            "channels": fmt.channels, "format": f"{fmt.container}/{fmt.subtype or 'vorbis'}"}
    return clip, fmt, info


def split_voices() -> dict[str, list[str]]:
    """Voice variants per split: a seeded shuffle of the sorted names, the first quarter test."""
    names = variants()
    order = np.random.default_rng(SEED).permutation(len(names))
    n_test = round(TEST_VOICE_FRACTION * len(names))
    return {"train": sorted(names[i] for i in order[n_test:]),
            "test": sorted(names[i] for i in order[:n_test])}


def build(out: Path) -> dict:
    import soundfile

    voices = split_voices()
    rows = []
    files: dict[str, dict[str, int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        for s, split in enumerate(("train", "test")):
            files[split] = {}
            for c, word in enumerate(WORDS):
                folder = out / split / word
                folder.mkdir(parents=True)
                # Each class cycles through its split's voices in its own seeded order, so
                # every voice says every word about equally often.
                order = np.random.default_rng([SEED, s, c]).permutation(voices[split])
                for i in range(PER_CLASS[split]):
                    rng = np.random.default_rng([SEED, s, c, i])
                    voice = str(order[i % len(order)])
                    clip, fmt, info = make_clip(word, voice, voices[split], rng, scratch)
                    path = folder / f"{word}_{i:04d}.{fmt.container}"
                    write(path, clip, fmt, scratch)
                    rows.append({"path": path.relative_to(out).as_posix(), "label": word, **info})
                files[split][word] = PER_CLASS[split]
    with open(out / "clips.csv", "w", newline="", encoding="utf-8") as table:
        writer = csv.DictWriter(table, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return {
        "source": (
            "Ten English command words said by the eSpeak NG synthesiser (Debian espeak-ng, "
            f"espeak-ng-data): {len(ACCENTS)} English accents x {sum(map(len, voices.values()))} "
            "voice variants, random rate and pitch, random level, lead-in and length (1.0-1.5 s), "
            "white/pink/brown noise (8-30 dB SNR) or time-reversed babble (12-30 dB); WAV "
            "16-bit at 8, 16, 22.05 and 44.1 kHz, FLAC 16/24-bit, some stereo, OGG Vorbis via "
            "FFmpeg; resampled with soxr. Split by voice variant: test voices are never heard "
            "in training."
        ),
        "classes": list(WORDS),
        "files": files,
        "packages": {**debian_versions(REQUIRES),
                     **debian_versions_matching(("libvorbisenc*",)),
                     **python_versions(("numpy", "soundfile", "soxr")),
                     # soundfile's wheel carries its own libsndfile (the WAV and FLAC writer).
                     "pypi:soundfile/libsndfile": soundfile.__libsndfile_version__},
        "seed": SEED,
        "split": "by voice variant (test voices never in train)",
        "voices": voices,
        "accents": list(ACCENTS),
        "clips": "clips.csv",
    }

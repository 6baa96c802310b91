"""Training-time augmentation of decoded batches (uint8 N×H×W×C images, int64 N×L token ids,
float32 N×samples waveforms, uint8 N×T×H×W×C clips), seeded.

Applied in the training loop only: validation, evaluation and the exported graph never see it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from toolkit.recipe import FLIPS


def random_flip(batch: torch.Tensor, mode: str, generator: torch.Generator) -> torch.Tensor:
    """Flip each image left-right (and, for `both`, upside down) with probability 1/2."""
    if mode not in FLIPS:
        raise ValueError(f"Unknown data.flip {mode!r}; valid flips: {', '.join(FLIPS)}.")
    axes = {"none": (), "horizontal": (2,), "both": (2, 1)}[mode]
    for axis in axes:
        mask = torch.rand(len(batch), generator=generator) < 0.5
        batch = torch.where(mask.view(-1, 1, 1, 1), batch.flip(axis), batch)
    return batch


def random_resized_crop(batch: torch.Tensor, min_scale: float,
                        generator: torch.Generator) -> torch.Tensor:
    """Crop a random box of area in [min_scale, 1] and aspect in [3/4, 4/3], resize it back."""
    if min_scale >= 1.0:
        return batch
    n, h, w, _ = batch.shape
    out = torch.empty_like(batch)
    for i in range(n):
        area = h * w * (min_scale + (1 - min_scale) * torch.rand(1, generator=generator).item())
        log_ratio = math.log(3 / 4) + math.log(16 / 9) * torch.rand(1, generator=generator).item()
        ratio = math.exp(log_ratio)
        cw = min(w, max(1, round(math.sqrt(area * ratio))))
        ch = min(h, max(1, round(math.sqrt(area / ratio))))
        top = int(torch.randint(0, h - ch + 1, (1,), generator=generator))
        left = int(torch.randint(0, w - cw + 1, (1,), generator=generator))
        crop = batch[i, top : top + ch, left : left + cw].permute(2, 0, 1)[None].float()
        resized = F.interpolate(crop, size=(h, w), mode="bilinear", align_corners=False)
        out[i] = resized[0].permute(1, 2, 0).round().clamp(0, 255).to(batch.dtype)
    return out


def color_jitter(batch: torch.Tensor, strength: float, generator: torch.Generator) -> torch.Tensor:
    """Random brightness, contrast and saturation factors in [1 - strength, 1 + strength]."""
    if strength <= 0:
        return batch
    n = len(batch)

    def factors() -> torch.Tensor:
        return (1 + strength * (2 * torch.rand(n, generator=generator) - 1)).view(n, 1, 1, 1)

    x = batch.float()
    x = x * factors()  # brightness
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * factors() + mean  # contrast
    gray = x.mean(dim=3, keepdim=True)
    x = (x - gray) * factors() + gray  # saturation
    return x.round().clamp(0, 255).to(batch.dtype)


def drop_tokens(batch: torch.Tensor, share: float, generator: torch.Generator) -> torch.Tensor:
    """Replace each real token (not padding) by the unknown token with probability `share`."""
    from toolkit.training.tokenizer import PAD_ID, UNK_ID

    if share <= 0:
        return batch
    hit = (torch.rand(batch.shape, generator=generator) < share) & (batch != PAD_ID)
    return torch.where(hit, torch.full_like(batch, UNK_ID), batch)


def shift_audio(batch: torch.Tensor, max_samples: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each waveform by up to `max_samples` either way, filling with silence."""
    if max_samples <= 0:
        return batch
    n, length = batch.shape
    shifts = torch.randint(-max_samples, max_samples + 1, (n,), generator=generator)
    source = torch.arange(length).view(1, -1) - shifts.view(-1, 1)  # where each sample comes from
    inside = (source >= 0) & (source < length)
    return torch.where(inside, batch.gather(1, source.clamp(0, length - 1)), 0.0)


def audio_gain(batch: torch.Tensor, gain_db: float, generator: torch.Generator) -> torch.Tensor:
    """Scale each waveform by a random gain in [-gain_db, +gain_db] dB."""
    if gain_db <= 0:
        return batch
    db = gain_db * (2 * torch.rand(len(batch), 1, generator=generator) - 1)
    return batch * 10 ** (db / 20)


def audio_noise(batch: torch.Tensor, min_snr_db: float, generator: torch.Generator) -> torch.Tensor:
    """Add white noise at a random signal-to-noise ratio in [min_snr_db, min_snr_db + 30] dB."""
    if min_snr_db <= 0:
        return batch
    snr = min_snr_db + 30 * torch.rand(len(batch), 1, generator=generator)
    power = batch.pow(2).mean(dim=1, keepdim=True).clamp(min=1e-10)
    noise = torch.randn(batch.shape, generator=generator)
    return batch + noise * torch.sqrt(power / 10 ** (snr / 10))


def augment(batch: torch.Tensor, data: object, generator: torch.Generator) -> torch.Tensor:
    """Every augmentation the recipe's data section names, in a fixed order."""
    if hasattr(data, "token_dropout"):
        return drop_tokens(batch, data.token_dropout, generator)
    if hasattr(data, "frames"):  # video: the whole clip flips, every frame alike
        if data.flip == "none":
            return batch
        mask = torch.rand(len(batch), generator=generator) < 0.5
        return torch.where(mask.view(-1, 1, 1, 1, 1), batch.flip(3), batch)
    if hasattr(data, "sample_rate"):
        batch = shift_audio(batch, round(data.time_shift * data.sample_rate), generator)
        batch = audio_gain(batch, data.gain_db, generator)
        return audio_noise(batch, data.noise, generator)
    batch = random_resized_crop(batch, data.crop_scale, generator)
    batch = random_flip(batch, data.flip, generator)
    return color_jitter(batch, data.color_jitter, generator)

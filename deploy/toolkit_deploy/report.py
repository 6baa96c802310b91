"""`toolkit evaluate … --report DIR`: one self-contained HTML page (pictures inlined as PNG data
URIs; Pillow draws them, so the runtime needs nothing more) with the metrics, the confusion matrix
as a heat map, the most confused pairs, robustness, and the worst misclassified inputs, shown as
each modality is best looked at: image thumbnails, text snippets, spectrograms, frame strips.
"""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

#: Misclassified inputs shown, the most confidently wrong first.
WORST = 12


def _png(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def spectrogram(wave: np.ndarray, n_fft: int = 512, hop: int = 128) -> Image.Image:
    """A log-power spectrogram as a grayscale picture (low frequencies at the bottom)."""
    if len(wave) < n_fft:
        wave = np.pad(wave, (0, n_fft - len(wave)))
    frames = np.lib.stride_tricks.sliding_window_view(wave, n_fft)[::hop]
    power = np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1)) ** 2
    db = 10 * np.log10(power + 1e-10)
    db = np.clip((db - (db.max() - 80)) / 80, 0, 1)  # the top 80 dB
    picture = (255 * (1 - db.T[::-1])).astype(np.uint8)
    return Image.fromarray(picture).resize((256, 128))


def render(modality: str, decoded: Any, text: str | None) -> str:
    """HTML for one input: a picture (data URI) or a text snippet."""
    if modality == "text":
        snippet = text if len(text) <= 300 else text[:300] + "…"
        return f'<div class="text">{html.escape(snippet)}</div>'
    if modality == "image":
        image = Image.fromarray(decoded[:, :, 0] if decoded.shape[2] == 1 else decoded)
    elif modality == "audio":
        image = spectrogram(decoded[0])
    else:  # video: the frames in order, in two rows
        frames = [Image.fromarray(f) for f in decoded]
        width, height = frames[0].size
        columns = (len(frames) + 1) // 2
        image = Image.new("RGB", (width * columns, height * (2 if len(frames) > 1 else 1)))
        for t, frame in enumerate(frames):
            image.paste(frame, ((t % columns) * width, (t // columns) * height))
    if min(image.size) < 96:  # small model inputs: enlarged, pixels kept sharp
        scale = -(-96 // min(image.size))
        image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    return f'<img src="{_png(image)}" alt="input">'


def _heat_map(result: dict[str, Any]) -> str:
    labels, matrix = result["labels"], np.asarray(result["confusion_matrix"], dtype=np.float64)
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    head = "".join(f"<th>{html.escape(label)}</th>" for label in labels)
    rows = []
    for label, counts, row in zip(labels, matrix.astype(int), shares, strict=True):
        cells = "".join(
            f'<td style="background: rgba(31, 119, 180, {share:.3f}); color: '
            f'{"white" if share > 0.55 else "black"}">{count}</td>'
            for count, share in zip(counts, row, strict=True))
        rows.append(f"<tr><th>{html.escape(label)}</th>{cells}</tr>")
    return (f'<table class="matrix"><tr><th>true \\ predicted</th>{head}</tr>'
            f'{"".join(rows)}</table>')


def write_report(result: dict[str, Any], worst: list[dict[str, Any]], modality: str,
                 out: str | os.PathLike) -> Path:
    """Write `out/report.html` for an evaluation `result` and its `worst` misclassified inputs
    (each: name, true, predicted, confidence, html)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    top_k = "".join(f"<tr><th>top-{k} accuracy</th><td>{v:.4f}</td></tr>"
                    for k, v in (result.get("top_k_accuracy") or {}).items())
    per_class = "".join(
        f"<tr><th>{html.escape(label)}</th><td>{m['precision']:.4f}</td><td>{m['recall']:.4f}"
        f"</td><td>{m['f1']:.4f}</td><td>{m['support']}</td></tr>"
        for label, m in result["per_class"].items())
    pairs = "".join(
        f"<li>{html.escape(p['true'])} → {html.escape(p['predicted'])}: {p['count']} "
        f"({p['share_of_true']:.1%} of {html.escape(p['true'])})</li>"
        for p in result.get("confused_pairs") or []) or "<li>none</li>"
    robustness = "".join(
        f"<tr><th>{html.escape(r['perturbation'])}</th><td>{r['strength']:g} "
        f"({html.escape(r['unit'])})</td><td>{r['accuracy']:.4f}</td><td>{r['drop']:+.4f}</td>"
        "</tr>" for r in result.get("robustness") or [])
    robustness_html = (
        "<h2>Robustness</h2><table><tr><th>corruption</th><th>strength</th><th>accuracy</th>"
        f"<th>drop</th></tr>{robustness}</table>" if robustness else "")
    gallery = "".join(
        f'<figure>{w["html"]}<figcaption><b>{html.escape(w["name"])}</b><br>true '
        f'{html.escape(w["true"])}, predicted {html.escape(w["predicted"])} '
        f'({w["confidence"]:.1%})</figcaption></figure>' for w in worst) or "<p>none</p>"
    split = f" ({result['split']} split)" if result.get("split") else ""
    multilabel = result.get("task") == "multilabel"
    if multilabel:  # label sets: no confusion matrix; the worst are the most wrong sets
        figures = "".join(
            f"<tr><th>{name}</th><td>{result[key]:.4f}</td></tr>"
            for name, key in (("micro F1", "micro_f1"), ("macro F1", "macro_f1"),
                              ("mAP", "mAP"), ("exact match", "exact_match"),
                              ("Hamming loss", "hamming_loss")) if key in result)
        matrix_html = ""
        worst_html = (f"<h2>Worst label sets</h2><p>The {len(worst)} inputs whose predicted "
                      "label set is furthest from the true one (largest |probability − "
                      "truth| shown).</p>")
    else:
        figures = (f"<tr><th>accuracy</th><td>{result['accuracy']:.4f}</td></tr>{top_k}\n"
                   f"<tr><th>macro F1</th><td>{result['macro_f1']:.4f}</td></tr>"
                   f"\n<tr><th>weighted F1</th><td>{result['weighted_f1']:.4f}</td></tr>")
        matrix_html = (f"<h2>Confusion matrix</h2>{_heat_map(result)}\n"
                       f"<h2>Most confused</h2><ul>{pairs}</ul>")
        worst_html = ("<h2>Worst misclassified</h2>\n"
                      f"<p>The {len(worst)} inputs the model got wrong most confidently.</p>")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Evaluation of {html.escape(Path(result['model']).name)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1100px; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }}
th {{ background: #f4f4f4; }}
.matrix td {{ min-width: 3em; text-align: center; }}
.gallery {{ display: flex; flex-wrap: wrap; gap: 1em; }}
figure {{ margin: 0; max-width: 400px; }}
figure img {{ max-width: 100%; }}
figcaption {{ font-size: 0.85em; }}
.text {{ border: 1px solid #ccc; padding: 0.5em; font-size: 0.9em; background: #fafafa; }}
</style></head><body>
<h1>Evaluation of {html.escape(str(result['model']))}</h1>
<p>on {html.escape(str(result['data']))}{html.escape(split)}: {result['n_samples']} inputs scored,
{result['n_failed']} could not be read.</p>
<table>{figures}</table>
<h2>Per class</h2>
<table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>
{per_class}</table>
{matrix_html}
{robustness_html}
{worst_html}
<div class="gallery">{gallery}</div>
</body></html>
"""
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path

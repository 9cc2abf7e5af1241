"""A cleaning aid: the images the model disagrees with most, as a CSV and a self-contained HTML page.

The fastai book cleans data after the first model because the highest-loss
images are where mislabelled and junk images hide. A notebook widget is no use
on a headless training box, so the list is written as files: the CSV for
scripts, the HTML page (thumbnails inlined, so it can be mailed or archived)
for a person, with the exact shell commands to relabel or delete each image.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import shlex
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from training.interpret import Predictions

TOP_LOSSES_CSV = "top_losses.csv"
CLEANING_HTML = "cleaning.html"
THUMB_PX = 160
CSV_FIELDS = ("rank", "split", "path", "label", "predicted", "p_predicted", "p_label", "loss")


@dataclass(frozen=True, slots=True)
class Suspect:
    """One image worth a second look."""

    split: str
    path: Path
    label: str
    predicted: str
    p_predicted: float
    p_label: float
    loss: float


def rank_suspects(by_split: dict[str, Predictions], k: int) -> list[Suspect]:
    """The ``k`` highest-loss images over all given splits, worst first."""
    rows = []
    for split, preds in by_split.items():
        for i, path in enumerate(preds.files):
            pred, target = int(preds.predicted[i]), int(preds.targets[i])
            rows.append(
                Suspect(
                    split=split,
                    path=path,
                    label=preds.vocab[target],
                    predicted=preds.vocab[pred],
                    p_predicted=float(preds.probs[i, pred]),
                    p_label=float(preds.probs[i, target]),
                    loss=float(preds.losses[i]),
                )
            )
    rows.sort(key=lambda s: -s.loss)
    return rows[:k]


def write_csv(suspects: list[Suspect], path: Path) -> None:
    """Write ``top_losses.csv`` (one row per suspect, worst first)."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_FIELDS)
        for rank, s in enumerate(suspects, start=1):
            writer.writerow(
                [
                    rank,
                    s.split,
                    s.path,
                    s.label,
                    s.predicted,
                    f"{s.p_predicted:.4f}",
                    f"{s.p_label:.4f}",
                    f"{s.loss:.4f}",
                ]
            )


def _thumbnail(path: Path) -> str:
    """An inline JPEG data URI, so the page works wherever it is opened."""
    try:
        with Image.open(path) as src:
            thumb = src.convert("RGB")
        thumb.thumbnail((THUMB_PX, THUMB_PX))
        buf = io.BytesIO()
        thumb.save(buf, format="JPEG", quality=80)
    except OSError:
        return ""
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>bearwatch cleaning: {run}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; }}
table {{ border-collapse: collapse; }}
td, th {{ border: 1px solid #ccc; padding: 4px 8px; vertical-align: top; text-align: left; }}
code {{ font-size: 0.85em; background: #f4f4f4; display: block; margin: 2px 0; user-select: all; }}
.bad {{ color: #b00; font-weight: bold; }}
</style></head><body>
<h1>Images to check: {run}</h1>
<p>The {n} images below are the ones the model disagrees with most (highest loss first),
from the validation and training splits of <code>{data}</code>. For each, look at the picture and decide:</p>
<ul>
<li><b>label is wrong</b>: move the file into the right class folder (the <code>mv</code> line
moves it to the model's prediction; edit the class if that is wrong too);</li>
<li><b>not a usable image</b> (no scene, wrong camera, junk): delete it with the <code>rm</code> line;</li>
<li><b>label is right</b>: keep it; the model needs more examples like it (consider adding similar images).</li>
</ul>
<p>Then train again from the cleaned folder. The same list is in <code>{csv}</code> for scripts.</p>
<table><tr><th>#</th><th>image</th><th>label → predicted</th><th>loss</th><th>file and commands</th></tr>
{rows}
</table></body></html>
"""


def _row(rank: int, s: Suspect, data_dir: Path) -> str:
    wrong = s.label != s.predicted
    verdict = (
        f'<span class="bad">{html.escape(s.predicted)}</span>'
        if wrong
        else html.escape(s.predicted)
    )
    thumb = _thumbnail(s.path)
    img = f'<img src="{thumb}" alt="{html.escape(s.path.name)}">' if thumb else "(unreadable)"
    mv = f"mv {shlex.quote(str(s.path))} {shlex.quote(str(data_dir / s.predicted))}/"
    rm = f"rm {shlex.quote(str(s.path))}"
    return (
        f"<tr><td>{rank}</td><td>{img}</td>"
        f"<td>{html.escape(s.label)} → {verdict}<br>p={s.p_predicted:.3f} (label p={s.p_label:.3f})"
        f"<br>{html.escape(s.split)}</td><td>{s.loss:.3f}</td>"
        f"<td>{html.escape(str(s.path))}<code>{html.escape(mv)}</code><code>{html.escape(rm)}</code></td></tr>"
    )


def write_html(suspects: list[Suspect], path: Path, data_dir: Path, run_name: str) -> None:
    """Write ``cleaning.html``: thumbnails, labels, predictions, losses and fix-up commands."""
    rows = "\n".join(_row(rank, s, data_dir) for rank, s in enumerate(suspects, start=1))
    page = _PAGE.format(
        run=html.escape(run_name),
        n=len(suspects),
        data=html.escape(str(data_dir)),
        csv=TOP_LOSSES_CSV,
        rows=rows,
    )
    path.write_text(page, encoding="utf-8")


def write_cleaning_aid(
    by_split: dict[str, Predictions], run_dir: Path, data_dir: Path, k: int, run_name: str
) -> int:
    """Write ``top_losses.csv`` and ``cleaning.html``; returns how many images they list."""
    suspects = rank_suspects(by_split, k)
    write_csv(suspects, run_dir / TOP_LOSSES_CSV)
    write_html(suspects, run_dir / CLEANING_HTML, data_dir, run_name)
    return len(suspects)

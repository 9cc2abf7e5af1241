"""The report leads with misses: a seeded store where an IR night camera misses every bear it was audited on."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from monitor.store import ReviewStore
from tests.monitor.report.test_report import alert, audit, local, run_report

CONFIG = """\
timezone: America/Edmonton
model: {path: model.onnx}
cameras:
  - {id: meadow, source: "0", mode: shadow}
  - {id: trail-night, source: "1", mode: shadow}
  - {id: porch, source: "2", mode: review}
audit: {random_rate: 0.1}
"""


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The issue's case: 24 reviews (of 30 needed) and 22 audit frames the model called
    person, all labelled bear at night; a healthy day camera; a review camera with one miss."""
    d = tmp_path_factory.mktemp("misses")
    (d / "bearwatch.yaml").write_text(CONFIG)
    store = ReviewStore(d / "bearwatch.db")
    try:
        for k in range(35):
            alert(store, "meadow", local(3, 9) + 300 * k, "confirmed")
        for k in range(24):
            alert(store, "trail-night", local(3, 21) + 300 * k, "confirmed")
        for k in range(22):
            audit(store, "trail-night", local(4, 1, k), "low_confidence", "bear")
        for k in range(3):
            alert(store, "porch", local(3, 12) + 300 * k, "confirmed")
        audit(store, "porch", local(3, 13), "random", "bear")
        audit(store, "porch", local(3, 14), "random", "empty")
    finally:
        store.close()
    return d / "bearwatch.db", d / "bearwatch.yaml"


def _report(seeded: tuple[Path, Path], out: Path, *extra: str) -> str:
    db, cfg = seeded
    proc = run_report("--store", str(db), "--config", str(cfg), "--since", "2024-06-03",
                      "--until", "2024-06-05", "--out", str(out), *extra)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_misses_override_too_few_reviews(seeded: tuple[Path, Path], tmp_path: Path) -> None:
    """Regression: 22 of 22 night misses read "keep in shadow: too few reviews (24 of 30)"."""
    r = json.loads(_report(seeded, tmp_path / "r", "--json"))
    night = r["cameras"]["trail-night"]
    assert night["periods"]["night"]["audit"]["misses_found"] == 22
    assert night["recommendation"]["code"] == "investigate_shadow_misses"
    assert night["recommendation"]["misses_scope"] == "night"
    assert night["recommendation"]["text"] == (
        "keep in shadow, investigate night: 22 of 22 labelled audit frames at night were missed"
        " (estimated recall 0.52)"
    )
    porch = r["cameras"]["porch"]["recommendation"]
    assert porch["code"] == "demote_shadow_misses"
    assert porch["text"].startswith("demote to shadow / investigate day: 1 of 2 labelled")
    assert r["cameras"]["meadow"]["recommendation"]["code"] == "promote_review"


def test_what_to_do_leads_with_misses_and_recall(seeded: tuple[Path, Path], tmp_path: Path) -> None:
    _report(seeded, tmp_path / "r")
    html = (tmp_path / "r" / "report.html").read_text()
    todo = html[html.index('<table class="todo">') : html.index("</table>")]
    headers = re.findall(r"<th[^>]*>([^<]+)</th>", todo)
    assert headers[:5] == ["camera", "mode now", "misses found in audits", "estimated recall",
                           "recommendation"]  # fmt: skip
    assert re.findall(r'<tr data-camera="([^"]+)"', todo) == ["trail-night", "porch", "meadow"]
    row = todo[todo.index('data-camera="trail-night"') :]
    assert "22 of 22" in row[: row.index("</tr>")]


def test_cli_summary_one_line_per_camera_misses_first(
    seeded: tuple[Path, Path], tmp_path: Path
) -> None:
    lines = _report(seeded, tmp_path / "r").splitlines()
    header = lines[1].split()
    assert header[:4] == ["camera", "mode", "misses", "recall"]
    rows = lines[3:-1]
    assert [line.split()[0] for line in rows] == ["trail-night", "porch", "meadow"]
    assert "22 of 22 (night 22)" in rows[0]
    assert rows[0].endswith("(estimated recall 0.52)")


def test_day_night_plot_has_a_legend_and_keeps_every_label_inside(
    seeded: tuple[Path, Path], tmp_path: Path
) -> None:
    """Regression: no legend when the first camera had no day reviews, and clipped camera names."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from monitor.report.html import day_night_figure

    summary = json.loads(_report(seeded, tmp_path / "r", "--json"))
    summary["cameras"] = {"a-very-long-camera-name-" + k: v for k, v in summary["cameras"].items()}
    fig = day_night_figure(summary)
    assert fig is not None
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == ["day", "night", "target 0.80"]
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    box = fig.bbox
    ax = fig.axes[0]
    texts = [*ax.get_xticklabels(), ax.title, ax.yaxis.label, *legend.get_texts()]
    for text in texts:
        extent = text.get_window_extent(renderer)
        assert box.x0 - 1 <= extent.x0 and extent.x1 <= box.x1 + 1, text.get_text()
        assert box.y0 - 1 <= extent.y0 and extent.y1 <= box.y1 + 1, text.get_text()

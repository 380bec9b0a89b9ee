"""bench/RESULTS.md: the dated history of recorded full runs, newest first.

`python -m bench --record` copies a finished run's JSON, markdown and plots into
bench/history/<timestamp>/ (tracked by git, unlike bench/results/) and inserts its report at
the top of RESULTS.md, below the fixed introduction, with the image links pointing there.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from bench.report import JSON_NAME, MD_NAME, render_markdown

BENCH = Path(__file__).resolve().parent
RESULTS_MD = BENCH / "RESULTS.md"
HISTORY = BENCH / "history"
MARKER = "<!-- newest run below this line; `python -m bench --record` inserts here -->"
INTRO = f"""# Benchmark history

Recorded full runs of `make bench` (`python -m bench --record`), newest first. Each run's
JSON (every repetition, the machine, every version) and plots are in bench/history/. Figures
are medians; compare implementations within one run, not across runs or machines.

{MARKER}
"""


def record(outdir: Path) -> Path:
    """Copies a run into the history and adds its section to RESULTS.md; returns the copy."""
    doc: dict[str, Any] = json.loads((outdir / JSON_NAME).read_text(encoding="utf-8"))
    stamp = outdir.name
    dest = HISTORY / stamp
    dest.mkdir(parents=True, exist_ok=True)
    for name in [JSON_NAME, MD_NAME, *doc.get("plots", [])]:
        shutil.copy2(outdir / name, dest / name)
    section = render_markdown(doc, image_dir=f"history/{stamp}/", title_level=2)
    text = RESULTS_MD.read_text(encoding="utf-8") if RESULTS_MD.exists() else INTRO
    if MARKER not in text:
        text = INTRO + "\n" + text
    head, _, tail = text.partition(MARKER)
    RESULTS_MD.write_text(f"{head}{MARKER}\n\n{section}\n{tail.lstrip()}", encoding="utf-8")
    return dest

"""bench/RESULTS.md: the dated history of recorded full runs, newest first.

`python -m bench --record` copies a finished run's JSON (every repetition, the machine,
every version) into bench/history/<timestamp>/, tracked by git unlike bench/results/, and
inserts its tables at the top of RESULTS.md, below the fixed introduction. Nothing generated
from the JSON is kept: `python -m bench.report bench/history/<timestamp>/results.json`
draws the markdown and the plots again, into bench/results/.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.report import JSON_NAME, render_markdown

BENCH = Path(__file__).resolve().parent
RESULTS_MD = BENCH / "RESULTS.md"
HISTORY = BENCH / "history"
MARKER = "<!-- newest run below this line; `python -m bench --record` inserts here -->"
INTRO = f"""# Benchmark history

Recorded full runs of `make bench` (`python -m bench --record`), newest first. Each run's
JSON (every repetition, the machine, every version) is in bench/history/; the plots are not
kept: `python -m bench.report bench/history/<run>/results.json` draws them (and the tables)
again into bench/results/. Figures are medians; compare implementations within one run, not
across runs or machines.

How to read them:

- Everything runs on one machine: both daemons, iperf3 and the kernel share its cores, so
  CPU cost per byte decides throughput. `veth` (no tunnel) is the ceiling.
- "CPU/GB, whole system" is busy time from /proc/stat (softirq included) per GB delivered;
  it also counts anything else running on the machine at the time. "CPU/GB, daemons" is
  the two daemons' own user + system time.
- "packets/syscall" counts full-size-packet equivalents (bytes moved / bytes of a full
  packet on that path) per read/write/send/recv-family system call of the daemon, counted
  by perf during one TCP stream; a one-packet-per-call implementation shows about 1.
- Over a veth, offloaded superpackets are never segmented, which favours implementations
  with TSO/GSO; real NICs narrow that gap (perf-notes.md, section 5).

{MARKER}
"""


def record(outdir: Path) -> Path:
    """Copies a run's JSON into the history and adds its tables to RESULTS.md (with a line
    saying where its JSON is, and no plots); returns the history directory."""
    doc: dict[str, Any] = json.loads((outdir / JSON_NAME).read_text(encoding="utf-8"))
    stamp = outdir.name
    dest = HISTORY / stamp
    dest.mkdir(parents=True, exist_ok=True)
    # One line: the history keeps the data, not a diff-friendly layout of it.
    (dest / JSON_NAME).write_text(json.dumps(doc, separators=(",", ":")) + "\n",
                                  encoding="utf-8")
    section = render_markdown({**doc, "plots": []}, title_level=2)
    section += f"\nThe run's JSON: [history/{stamp}/{JSON_NAME}](history/{stamp}/{JSON_NAME}).\n"
    text = RESULTS_MD.read_text(encoding="utf-8") if RESULTS_MD.exists() else INTRO
    if MARKER not in text:
        text = INTRO + "\n" + text
    head, _, tail = text.partition(MARKER)
    RESULTS_MD.write_text(f"{head}{MARKER}\n\n{section}\n{tail.lstrip()}", encoding="utf-8")
    return dest

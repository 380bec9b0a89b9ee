"""tests/fuzz/run.py reads what libFuzzer printed: the table of a campaign (make
fuzz-campaign) comes from these logs, so its numbers must be the log's own.

The logs here are cut from real runs of the drivers (replay to 10^7 executions; an
allowed-IPs check failing, as FUZZ_CHECK and libFuzzer print it).
"""

from pathlib import Path

from tests.fuzz.run import Result, finding, parse_log, record

DONE = "".join([
    "INFO: Seed: 1414135296\n",
    "#2\tINITED cov: 12 ft: 13 corp: 1/1b exec/s: 0 rss: 30Mb\n",
    "#9891220\tREDUCE cov: 14 ft: 99 corp: 53/2800b lim: 4096 exec/s: 51249 rss: 467Mb",
    " L: 336/387 MS: 1 EraseBytes-\n",
    "#10000000\tDONE   cov: 14 ft: 99 corp: 53/2800b lim: 4096 exec/s: 51282 rss: 467Mb\n",
    "Done 10000000 runs in 195 second(s)\n",
    "stat::number_of_executed_units: 10000000\n",
    "stat::average_exec_per_sec:     51282\n",
    "stat::new_units_added:          65\n",
])

CRASH = "".join([
    "#524288\tpulse  cov: 445 ft: 2802 corp: 610/210Kb lim: 4096 exec/s: 1310 rss: 520Mb\n",
    "#530001\tNEW    cov: 446 ft: 2810 corp: 611/211Kb lim: 4096 exec/s: 1309 rss: 520Mb",
    " L: 99/4096 MS: 2 CopyPart-ChangeBit-\n",
    "csrc/fuzz/allowedips_fuzz.c:111: check failed: got == want: allowed-IPs lookup differs",
    " from the reference\n",
    "==4711== ERROR: libFuzzer: deadly signal\n",
    "MS: 1 ChangeBit-; base unit: 0123456789abcdef0123456789abcdef01234567\n",
    "artifact_prefix='build/fuzz/crashes/allowedips/'; Test unit written to",
    " build/fuzz/crashes/allowedips/crash-da39a3ee\n",
])

def test_a_finished_run_gives_its_final_stats() -> None:
    r = parse_log(DONE)
    assert (r.executions, r.cov, r.ft, r.corpus) == (10_000_000, 14, 99, "53/2800b")


def test_a_crashed_run_gives_its_last_status_line() -> None:
    r = parse_log(CRASH)
    assert (r.executions, r.cov, r.ft, r.corpus) == (530_001, 446, 2810, "611/211Kb")
    assert finding(CRASH).startswith("check failed: got == want: allowed-IPs lookup differs")


def test_a_sanitizer_report_is_the_finding() -> None:
    report = "ERROR: AddressSanitizer: heap-buffer-overflow on address 0x6020 at pc 0x1"
    assert finding(f"==1== {report}\n") == report


def test_an_empty_log_is_zero() -> None:
    assert parse_log("") == Result()


def test_the_record_holds_every_target(tmp_path: Path) -> None:
    out = tmp_path / "campaign.md"
    done = parse_log(DONE)
    done.seconds, done.cpu_seconds = 195.0, 100.0
    record(out, [("replay", done), ("allowedips", parse_log(CRASH))], 10_000_000,
           "2026-12-04 00:00", "0.50 0.40 0.30")
    text = out.read_text()
    assert "| replay | 10,000,000 | 195 | 51,282 | 100,000 | 14 / 99 | 53/2800b | ok |" in text
    assert "| allowedips | 530,001 |" in text
    assert "Goal: 10,000,000 executions a target." in text

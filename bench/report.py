"""BENCHMARKS.md from the JSON files in bench/results/.

Each run writes `bench/results/<UTC timestamp>.json`; this module renders the latest
`make bench` run and the latest `make bench-full` run (each figure beside the baseline
measured in the same run), the trend over every run kept, and where the time goes
(`bench/findings.md`, written by hand from the latest profile, and the profile itself).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import BENCH_DIR, BENCHMARKS, RESULTS_DIR

REPO = BENCH_DIR.parent
BENCHMARKS_MD = REPO / "BENCHMARKS.md"
FINDINGS = BENCH_DIR / "findings.md"


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in _read("/proc/cpuinfo").splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    mem_kb = next(
        (int(line.split()[1]) for line in _read("/proc/meminfo").splitlines()
         if line.startswith("MemTotal:")),
        0,
    )  # fmt: skip
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "python": sys.version.split()[0],
        "os": platform.platform(),
    }


def git() -> dict[str, Any]:
    def out(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=REPO, capture_output=True, text=True, check=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""

    changed = [line for line in out("status", "--porcelain").splitlines() if line]
    return {
        "commit": out("rev-parse", "HEAD"),
        "subject": out("log", "-1", "--format=%s"),
        "uncommitted_files": len(changed),
    }


def load() -> str:
    """The load averages (1, 5, 15 min) and running/total tasks, as `uptime` shows them."""
    return _read("/proc/loadavg").strip()


def _number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    if unit == "×":
        return f"{value:.2f}×"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:,.1f}"
    else:
        text = f"{value:,.2f}"
    return f"{text} {unit}".strip()


def _met(met: bool | None) -> str:
    return "—" if met is None else ("**met**" if met else "**not met**")


def _figures_table(run: dict[str, Any]) -> list[str]:
    lines = [
        "| Benchmark | Figure | Baseline, same run | Ratio | Target | |",
        "|---|---:|---|---:|---|---|",
    ]
    for result in run["results"]:
        if result.get("error"):
            lines.append(f"| **{result['name']}** failed | — | {result['error'][:120]} | | | |")
            continue
        for figure in result["figures"]:
            baseline = (
                f"{figure['baseline_label']}: {_number(figure['baseline'], figure['unit'])}"
                if figure.get("baseline") is not None
                else "—"
            )
            ratio = f"{figure['ratio']:.2f}×" if figure.get("ratio") is not None else "—"
            lines.append(
                f"| {figure['label']} | {_number(figure['value'], figure['unit'])} | {baseline}"
                f" | {ratio} | {figure.get('target') or ''} | {_met(figure.get('met'))} |"
            )
    return lines


def _targets_table(run: dict[str, Any]) -> list[str]:
    lines = ["| Target (issue) | Measured | |", "|---|---|---|"]
    for target in run.get("targets", []):
        lines.append(f"| {target['target']} | {target['measured']} | {_met(target['met'])} |")
    return lines


def _notes(run: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for result in run["results"]:
        notes = list(dict.fromkeys(f["note"] for f in result.get("figures", []) if f.get("note")))
        if notes:
            lines.append(f"- **{result['name']}**: " + "; ".join(notes) + ".")
    return lines


def _run_section(title: str, run: dict[str, Any], file_name: str) -> list[str]:
    info = run["run"]
    m = info["machine"]
    lines = [
        f"## {title}",
        "",
        f"- **Command**: `{info['command']}` — wall time {info['wall_seconds'] / 60:.1f} min"
        f" ({info['wall_seconds']:.0f} s)",
        f"- **Date**: {info['started_utc']} (UTC)",
        f"- **Machine**: {m['nproc']} cores ({m['cpu']}), {m['ram_gb']} GB RAM, "
        f"Python {m['python']}, {m['os']}",
        f"- **Code**: commit `{info['git']['commit'][:12]}` ({info['git']['subject']})"
        + (
            f", with {info['git']['uncommitted_files']} uncommitted files in the tree"
            if info["git"]["uncommitted_files"]
            else ""
        ),
        f"- **Servers**: {info['servers']}",
        f"- **Rules**: {info.get('rules', 'plain Python')}",
        f"- **Load** (`/proc/loadavg`: 1, 5, 15 min, running/total tasks): before "
        f"`{info['load']['before']}`, after `{info['load']['after']}`; 1-minute load "
        f"sampled every 5 s during the run: min {info['load']['min_1m']}, "
        f"max {info['load']['max_1m']}. The machine is shared with other engineers' test "
        "runs; a load well above the core count means the figures are pessimistic.",
        f"- **Scale**: {info['scale_note']}",
        f"- **Raw results**: `bench/results/{file_name}`",
        "",
        *_figures_table(run),
        "",
        "Targets from the issue:",
        "",
        *_targets_table(run),
        "",
        *_notes(run),
        *(f"- **Erratum**: {text}" for text in info.get("errata", [])),
    ]
    return lines


def _trend(runs: list[tuple[str, dict[str, Any]]]) -> list[str]:
    keys = [
        ("ingest_rate", "ingest ev/s"),
        ("raw_pipe_rate", "raw pipe ev/s"),
        ("raw_pipe_nats_py_fetch_rate", "raw pipe, nats-py fetch ev/s"),
        ("naive_rate", "naive ev/s"),
        ("replay_store_rate", "replay (store) ev/s"),
        ("replay_file_rate", "replay (file) ev/s"),
        ("latency_deciding_p99", "deciding p99 ms"),
        ("latency_deadline_p99", "deadline p99 ms"),
        ("memory_growth", "memory growth"),
    ]
    lines = [
        "| Run | Scale | " + " | ".join(label for _, label in keys) + " | load max |",
        "|---|---|" + "---:|" * len(keys) + "---:|",
    ]
    for name, run in runs:
        figures = {f["key"]: f["value"] for r in run["results"] for f in r.get("figures", [])}
        cells = [_number(figures.get(key)) for key, _ in keys]
        lines.append(
            f"| {name.removesuffix('.json')} | {run['run']['scale']} | "
            + " | ".join(cells)
            + f" | {run['run']['load']['max_1m']} |"
        )
    return lines


def _profile_section() -> list[str]:
    lines = ["## Where the time goes", ""]
    if FINDINGS.exists():
        lines += [FINDINGS.read_text().strip(), ""]
    profiles = sorted(RESULTS_DIR.glob("profile-*.json"))
    if not profiles:
        return [*lines, "No profile yet: `python -m bench.run --only ingest --profile`.", ""]
    latest = json.loads(profiles[-1].read_text())
    lines += [
        f"### Latest profile: `bench/results/{profiles[-1].name}`",
        "",
        f"`{latest['command']}` — {latest['py_spy']} at 50 Hz, non-blocking, attached "
        f"to each service for the whole ingest of {latest['events']:,} events "
        f"({latest['ingest_rate']:,.0f} events/s while profiled).",
        "",
    ]
    for name, summary in latest["processes"].items():
        cpu = summary.get("cpu_seconds")
        lines += [
            f"**{name}** — {summary['samples']:,} busy samples"
            + (f", {cpu:.0f} CPU s" if cpu is not None else ""),
            "",
            "| Los function on the stack | % of busy | Innermost frame in | % of busy |",
            "|---|---:|---|---:|",
        ]
        inclusive = [row for row in summary["los_inclusive_pct"] if not _wrapper(row[0])][:10]
        innermost = summary["innermost_pct"][:10]
        for row in range(max(len(inclusive), len(innermost))):
            left = inclusive[row] if row < len(inclusive) else ("", "")
            right = innermost[row] if row < len(innermost) else ("", "")
            lines.append(f"| `{left[0]}` | {left[1]} | {right[0]} | {right[1]} |")
        functions = summary.get("innermost_functions_pct", [])[:6]
        if functions:
            lines += [
                "",
                "Innermost functions: "
                + "; ".join(f"`{name}` {share} %" for name, share in functions)
                + ".",
            ]
        lines.append("")
    return lines


def _wrapper(frame: str) -> bool:
    """Frames on every stack of a process that say nothing about where time goes."""
    return frame.startswith(("<module> ", "run (services/kernel/runtime.py)")) or (
        "<locals>.<dictcomp>" in frame
    )


def render() -> str:
    runs = sorted(
        (p.name, json.loads(p.read_text()))
        for p in RESULTS_DIR.glob("*.json")
        if not p.name.startswith("profile-")
    )
    latest: dict[str, tuple[str, dict[str, Any]]] = {}
    for name, run in runs:
        if set(run["run"]["benchmarks"]) == set(BENCHMARKS):  # partial runs: trend only
            latest[run["run"]["scale"]] = (name, run)
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (about five minutes) and `make bench-full` (longer), which run",
        "`python -m bench.run [--full]` (`bench/`) on embedded servers, or on the servers",
        "`NATS_URL` / `DATABASE_URL` name. Every figure stands beside a baseline measured in the",
        "same run on the same machine; each run also leaves a JSON file in `bench/results/`.",
        "Nothing here is asserted by a test.",
        "",
        "What each benchmark does (details in each module's docstring):",
        "",
        "1. **Ingest** (`bench/ingest.py`): a synthetic cohort (`services/cohort`) sent by",
        "   `los import`'s `Importer` through intake/journey/employer (gRPC) → their stores →",
        "   outbox → JetStream → outcomes' journey store, with every rule running. Rate = events",
        "   accepted ÷ time from the first chunk sent to the last fact in the journey store.",
        "   Then each step of Los's own code an event takes, measured alone in one process",
        "   (`bench/budget.py`), beside all the raw pipe's processes spent per event; and how",
        "   often the ingest read a person back into outcomes' cache, counted (`bench/cache.py`).",
        "2. **Raw pipe** (`bench/raw_pipe.py`): the same file, client and hops with no logic —",
        "   gRPC → COPY into a plain table → JetStream publish → pull consumer → COPY. Then",
        "   the same pipe with nats-py's own `fetch` in the sink: the bare hop the issue's",
        "   ~13,000 events/s was measured with (context; the target is held to the first).",
        "3. **Naive** (`bench/naive.py`): outcomes' own journey store (`eventsourcing`) saving",
        "   one event per transaction, next to the same store at the service's batch size.",
        "4. **Replay** (`bench/replay.py`): the journey store's facts through every rule, next",
        "   to a raw read + JSON decode of the same rows; and `los replay` of the same JSONL",
        "   file, next to a raw read + JSON decode of its lines. The store's replay with the rules",
        "   compiled by mypyc, as the services run them, stands beside the same replay with",
        "   the rules as plain Python (`bench/compiled.py`).",
        "5. **Alert latency** (`bench/latency.py`): deciding event → alert at a WatchAlerts",
        "   client, and deadline → alert at the client, with 1,000 live events/s of background.",
        "6. **Memory** (`bench/memory.py`): peak RSS (`VmHWM`) of the outcomes process as the",
        "   participants it holds grow.",
        "",
    ]
    titles = {"bench": "`make bench`", "bench-full": "`make bench-full`"}
    for scale in ("bench", "bench-full"):
        if scale in latest:
            name, run = latest[scale]
            lines += [*_run_section(f"Latest {titles[scale]} run", run, name), ""]
        else:
            lines += [f"## {titles[scale]}", "", "Not run yet.", ""]
    lines += _profile_section()
    lines += ["## Trend (every run in bench/results/)", "", *_trend(runs), ""]
    return "\n".join(lines)


def write() -> Path:
    BENCHMARKS_MD.write_text(render())
    return BENCHMARKS_MD


def timestamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


if __name__ == "__main__":
    print(write())

"""Each figure beside its baseline from the same run, and the issue's targets judged."""

from __future__ import annotations

from typing import Any, NamedTuple

from bench.common import Figure, Result

# Each of the ingest's processes and the raw pipe's process on the same hop.
RAW_COUNTERPART = {
    "intake": "intake",
    "journey": "journey",
    "employer": "employer",
    "outcomes": "sink",
    "nats-server": "nats-server",
    "postgres": "postgres",
}


class _Beside(NamedTuple):
    """Another baseline of the same run the ingest stands beside, for context."""

    key: str  # the baseline's figure
    name: str  # in the key of the figure that puts the two side by side
    label: str
    baseline_label: str


_BESIDE_INGEST = (
    # The hop the issue measured its ~13,000 events/s with.
    _Beside(
        "raw_pipe_nats_py_fetch_rate",
        "nats_py_fetch",
        "the raw pipe read with nats-py's own `fetch`",
        "the issue's bare hop",
    ),
    _Beside("naive_rate", "naive", "the naive store", "naive, 1 event per transaction"),
)


def _cpu_per_event(result: Result | None, cpu_key: str, events_key: str) -> dict[str, float] | None:
    """Microseconds of CPU per event of each of the benchmark's processes."""
    if result is None or cpu_key not in result.details or not result.details.get(events_key):
        return None
    seconds: dict[str, float] = result.details[cpu_key]
    events = int(result.details[events_key])
    return {process: 1e6 * cpu / events for process, cpu in seconds.items()}


def _cpu_figures(results: dict[str, Result]) -> list[Figure]:
    """The ingest's CPU per event beside the raw pipe's: all processes together, then
    each process beside its counterpart on the same hop. The two cores bound both, so
    this says how much Los would have to shed, and where."""
    cpu = _cpu_per_event(results.get("ingest"), "cpu_seconds_until_last_fact", "accepted")
    raw = _cpu_per_event(results.get("raw_pipe"), "cpu_seconds", "events")
    if cpu is None or raw is None:
        return []
    figures = [
        Figure(
            key="ingest_cpu_per_event",
            label="CPU per event, all processes measured, up to the last fact",
            value=round(sum(cpu.values()), 1),
            unit="µs",
            baseline_label="raw pipe's processes",
            baseline=round(sum(raw.values()), 1),
        )
    ]
    for process, counterpart in RAW_COUNTERPART.items():
        if process in cpu and counterpart in raw:
            figures.append(
                Figure(
                    key=f"ingest_cpu_per_event_{process}",
                    label=f"CPU per event: {process}",
                    value=round(cpu[process], 1),
                    unit="µs",
                    baseline_label=f"raw pipe's {counterpart}",
                    baseline=round(raw[counterpart], 1),
                )
            )
    return figures


def link(results: dict[str, Result]) -> list[dict[str, Any]]:
    """Put each figure beside its baseline from the same run and judge the targets."""
    figures = {f.key: f for r in results.values() for f in r.figures}
    targets: list[dict[str, Any]] = []
    ingest_rate = figures.get("ingest_rate")
    raw = figures.get("raw_pipe_rate")
    if ingest_rate is not None and raw is not None:
        ingest_rate.baseline_label = "raw pipe"
        ingest_rate.baseline = raw.value
        share = ingest_rate.value / raw.value
        ingest_rate.target = "≥ 50 % of raw pipe and ≥ 5,000 events/s"
        ingest_rate.met = share >= 0.5 and ingest_rate.value >= 5_000
        targets.append(
            {
                "target": "ingest ≥ 50 % of the raw pipe",
                "measured": f"{100 * share:.0f} % ({ingest_rate.value:,.0f} vs "
                f"{raw.value:,.0f} events/s)",
                "met": share >= 0.5,
            }
        )
        targets.append(
            {
                "target": "ingest ≥ 5,000 events/s",
                "measured": f"{ingest_rate.value:,.0f} events/s",
                "met": ingest_rate.value >= 5_000,
            }
        )
        targets.append(
            {
                "target": "(DESIGN.md) ingest ≥ 70 % of the raw pipe",
                "measured": f"{100 * share:.0f} %",
                "met": share >= 0.7,
            }
        )
    if "ingest" in results:
        cpu = _cpu_figures(results)
        results["ingest"].figures.extend(cpu)
        measured = results["ingest"].details.get("cpu_seconds_until_last_fact", {})
        # Judged only with the servers' CPU in it: configured servers are not measured.
        if cpu and raw is not None and {"nats-server", "postgres"} <= measured.keys():
            # Half the raw pipe's rate with both cores busy leaves this much CPU an event.
            room = 2 * 1e6 / (raw.value / 2)
            cpu[0].target = f"≤ {room:,.0f} µs: both cores at half the raw pipe's rate"
            cpu[0].met = cpu[0].value <= room
        total = figures.get("budget_total")
        if total is not None and cpu:
            total.baseline_label = "raw pipe's processes, all they spent"
            total.baseline = cpu[0].baseline
    for baseline in _BESIDE_INGEST:
        found = figures.get(baseline.key)
        if ingest_rate is not None and found is not None and "ingest" in results:
            results["ingest"].figures.append(
                Figure(
                    key=f"ingest_vs_{baseline.name}",
                    label=f"Ingest end to end vs {baseline.label}",
                    value=ingest_rate.value,
                    unit="events/s",
                    baseline_label=baseline.baseline_label,
                    baseline=found.value,
                )
            )
    replay_keys = (
        "replay_store_rate",
        "replay_store_rate_parallel",
        "replay_file_rate",
        "replay_file_rate_parallel",
    )
    for figure in (figures[k] for k in replay_keys if k in figures):
        figure.target = "≥ 100,000 events/s"
        figure.met = figure.value >= 100_000
        targets.append(
            {
                "target": f"replay ≥ 100,000 events/s ({figure.label.split(' (')[0]})",
                "measured": f"{figure.value:,.0f} events/s",
                "met": figure.met,
            }
        )
    for kind in ("deciding", "deadline"):
        p99 = figures.get(f"latency_{kind}_p99")
        if p99 is not None:
            targets.append(
                {
                    "target": f"alert latency p99 < 500 ms ({kind})",
                    "measured": f"{p99.value:,.0f} ms",
                    "met": p99.met,
                }
            )
    growth = figures.get("memory_growth")
    if growth is not None:
        targets.append(
            {
                "target": "memory < 2× from 50k to 500k participants",
                "measured": f"{growth.value:.2f}× ({growth.label.split(', ')[1]})",
                "met": growth.met,
            }
        )
    return targets

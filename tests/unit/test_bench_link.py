"""`bench.targets.link`: each figure beside its baseline from the same run."""

from bench.common import Figure, Result
from bench.targets import link


def ingest() -> Result:
    return Result(
        "ingest",
        figures=[Figure("ingest_rate", "Ingest end to end", 4_000.0, "events/s")],
        details={
            "accepted": 200_000,
            "cpu_seconds_until_last_fact": {
                "intake": 12,
                "outcomes": 40,
                "nats-server": 5,
                "postgres": 3,
            },
        },
    )


def test_the_ingests_cpu_per_event_stands_beside_the_raw_pipes() -> None:
    raw_pipe = Result(
        "raw_pipe",
        figures=[Figure("raw_pipe_rate", "Raw pipe", 20_000.0, "events/s")],
        details={"events": 200_000, "cpu_seconds": {"sink": 10, "journey": 6}},
    )
    results = {"ingest": ingest(), "raw_pipe": raw_pipe}
    link(results)
    figures = {f.key: f for f in results["ingest"].figures}
    cpu = figures["ingest_cpu_per_event"]
    assert (cpu.value, cpu.unit, cpu.baseline) == (300.0, "µs", 80.0)  # 60 s and 16 s / 200,000
    # Half of 20,000 events/s on two cores: 200 µs of CPU an event at most.
    assert (cpu.target, cpu.met) == ("≤ 200 µs: both cores at half the raw pipe's rate", False)
    # Each process beside its counterpart on the same hop: outcomes reads as the sink does.
    outcomes = figures["ingest_cpu_per_event_outcomes"]
    assert (outcomes.value, outcomes.baseline_label, outcomes.baseline) == (
        200.0,
        "raw pipe's sink",
        50.0,
    )
    # A process the raw pipe has no counterpart for in this run gets no row of its own.
    assert "ingest_cpu_per_event_intake" not in figures


def test_without_a_raw_pipe_there_is_no_cpu_figure() -> None:
    results = {"ingest": ingest()}
    link(results)
    assert [f.key for f in results["ingest"].figures] == ["ingest_rate"]


def test_the_steps_measured_alone_stand_beside_all_the_raw_pipe_spent() -> None:
    raw_pipe = Result(
        "raw_pipe",
        figures=[Figure("raw_pipe_rate", "Raw pipe", 20_000.0, "events/s")],
        details={"events": 200_000, "cpu_seconds": {"sink": 10, "journey": 6}},
    )
    measured = ingest()
    measured.figures.append(Figure("budget_total", "All these steps", 90.0, "µs"))
    link({"ingest": measured, "raw_pipe": raw_pipe})
    total = next(f for f in measured.figures if f.key == "budget_total")
    assert (total.baseline, total.ratio) == (80.0, 90.0 / 80.0)


def test_the_ingest_also_stands_beside_nats_pys_fetch_and_the_naive_store() -> None:
    raw_pipe = Result(
        "raw_pipe",
        figures=[
            Figure("raw_pipe_rate", "Raw pipe", 20_000.0, "events/s"),
            Figure(
                "raw_pipe_nats_py_fetch_rate", "Raw pipe, nats-py's fetch", 10_000.0, "events/s"
            ),
        ],
    )
    naive = Result("naive", figures=[Figure("naive_rate", "Naive", 500.0, "events/s")])
    results = {"ingest": ingest(), "raw_pipe": raw_pipe, "naive": naive}
    targets = {t["target"]: t for t in link(results)}
    figures = {f.key: f for f in results["ingest"].figures}
    bare_hop = figures["ingest_vs_nats_py_fetch"]
    assert (bare_hop.value, bare_hop.baseline, bare_hop.ratio) == (4_000.0, 10_000.0, 0.4)
    assert bare_hop.target is None  # context only: the target stays with the first raw pipe
    assert targets["ingest ≥ 50 % of the raw pipe"]["measured"].startswith("20 %")
    assert (figures["ingest_vs_naive"].baseline, figures["ingest_vs_naive"].ratio) == (500.0, 8.0)


def test_without_the_servers_cpu_the_cpu_target_is_not_judged() -> None:
    """With configured servers (NATS_URL / DATABASE_URL) only the services are measured:
    their CPU alone says nothing about what is left of the two cores."""
    measured = ingest()
    measured.details["cpu_seconds_until_last_fact"] = {"intake": 2, "outcomes": 4}
    raw_pipe = Result(
        "raw_pipe",
        figures=[Figure("raw_pipe_rate", "Raw pipe", 20_000.0, "events/s")],
        details={"events": 200_000, "cpu_seconds": {"sink": 10}},
    )
    link({"ingest": measured, "raw_pipe": raw_pipe})
    cpu = next(f for f in measured.figures if f.key == "ingest_cpu_per_event")
    assert (cpu.value, cpu.target, cpu.met) == (30.0, None, None)

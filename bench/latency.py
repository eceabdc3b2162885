"""5. Alert latency, under a steady background load, measured at a WatchAlerts client.

The platform runs with `LOS_RULES__HANDOVER_GAP=PT2S` (the gap rule's 14 days shortened
to two seconds). Background (`bench/load.py`): `background_rate` live events per second
(no `recorded_at`, so the platform stamps its receive time) spread over all three source
services — referrals, measures ending and the next one starting in the same batch,
placements starting and ending — so every source keeps sending and outcomes' live clock
follows the wall clock. The background raises alerts of its own (MEASURE_CHURN, for one)
on a team queue nobody here watches.

Probe people (their own team queue, watched by one client) are referred and start a
measure before the probing starts. Then, at `probes_per_second` each:

- a deciding event: `measure.ended` whose 2-second window has long passed, so the
  HANDOVER_GAP alert is raised the moment the end is recorded. Latency = arrival at the
  watching client − the moment the client started sending the event;
- a deadline: `measure.ended` that occurred just now, so the alert falls due two seconds
  later with no further event. Latency = arrival − the deadline (the alert's raised_at).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import Any

from bench.common import Context, Figure, Result, delete_stream, percentile
from bench.load import Background, Load, People, Someone, authorization, background, now, sender
from bench.procs import CpuMeter
from services.cli.platform import running_services
from services.cli.watch import watch
from services.kernel.rpc import aio_channel
from services.kernel.settings import Settings, get_settings
from services.outcomes.auth import mint
from services.rpc.los.v1 import sources_pb2, sources_pb2_grpc

GAP = timedelta(seconds=2)
PROBE_TEAM = "bench-probe"


@dataclass
class Probe:
    phase: str
    kind: str  # "deciding" or "deadline"
    person: Someone
    measure: str
    sent_at: float = 0.0  # time.time() when the client started sending the end
    due_at: float = 0.0  # time.time() of the deadline (deadline probes)
    arrived_at: float | None = None
    raised_at: float | None = None

    @property
    def latency(self) -> float:
        """Seconds from the deciding event's sending, or from the deadline, to arrival."""
        assert self.arrived_at is not None
        start = self.sent_at if self.kind == "deciding" else self.due_at
        return self.arrived_at - start


async def _submit(stub: sources_pb2_grpc.SourcesAsyncStub, events: list[str]) -> None:
    request = sources_pb2.SubmitEventsRequest(events=events)
    reply = await stub.SubmitEvents(request, timeout=120, metadata=authorization())
    if reply.rejected:
        raise RuntimeError(f"probe events rejected: {reply.rejected[0]}")


async def _watcher(address: str, probes: dict[str, Probe], token: str) -> None:
    async for update in watch(address, token, org_unit=PROBE_TEAM):
        arrived = time.time()
        probe = probes.get(update.alert.subject)
        if update.change == "raised" and probe is not None and probe.arrived_at is None:
            probe.arrived_at = arrived
            probe.raised_at = update.alert.raised_at.ToDatetime(UTC).timestamp()


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(values, 50) * 1000, 1),
        "p95_ms": round(percentile(values, 95) * 1000, 1),
        "p99_ms": round(percentile(values, 99) * 1000, 1),
        "max_ms": round(max(values, default=float("nan")) * 1000, 1),
    }


@dataclass(frozen=True)
class Phase:
    name: str
    rate: int
    warmup: float
    seconds: float


async def _probe(
    stubs: dict[str, Any], probes: list[Probe], per_second: float, seconds: float
) -> list[Probe]:
    """Deciding and deadline probes, alternating, `per_second` of each kind, for `seconds`
    (a probe whose sending falls behind is sent at once); returns the probes sent."""
    interval = 1 / per_second / 2
    started = time.monotonic()
    sent: list[Probe] = []
    for index, probe in enumerate(probes):
        if time.monotonic() - started >= seconds:
            break
        ended_at = now()
        if probe.kind == "deciding":
            ended_at -= timedelta(days=1)  # its two-second window passed long ago
        data = {"measure_id": probe.measure, "status": "FULLFORT", "reason": "FERDIG"}
        line = probe.person.event("measure.ended", data, ended_at)
        probe.due_at = ended_at.timestamp() + GAP.total_seconds()
        probe.sent_at = time.time()
        await _submit(stubs["journey"], [line])
        sent.append(probe)
        await asyncio.sleep(max(0.0, started + (index + 1) * interval - time.monotonic()))
    return sent


async def _prepare_probes(stubs: dict[str, Any], probes: list[Probe]) -> None:
    """Probe people: referred a month ago to the probe team, a measure running 20 days."""
    today = now()
    referral = {"channel": "nav", "org_unit": PROBE_TEAM}
    referred = [
        p.person.event("participant.referred", referral, today - timedelta(days=30)) for p in probes
    ]
    started = [
        p.person.event(
            "measure.started",
            {"measure_id": p.measure, "measure_code": "AVKLARING", "provider": p.person.org},
            today - timedelta(days=20),
        )
        for p in probes
    ]
    for start in range(0, len(probes), 500):
        await _submit(stubs["intake"], referred[start : start + 500])
        await _submit(stubs["journey"], started[start : start + 500])


async def _arrived(probes: list[Probe], limit: float) -> None:
    deadline = time.monotonic() + limit
    while any(p.arrived_at is None for p in probes) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.1)


async def run(ctx: Context) -> Result:
    result = Result("latency")
    scale = ctx.scale
    phases = [
        Phase("light", scale.light_rate, scale.latency_warmup / 2, scale.light_seconds),
        Phase("load", scale.background_rate, scale.latency_warmup, scale.latency_seconds),
    ]
    env = ctx.isolated_env(rules__handover_gap="PT2S")
    people = People(seed=7)
    by_phase: dict[str, list[Probe]] = {}
    for phase in phases:
        count = round(phase.seconds * scale.probes_per_second)
        by_phase[phase.name] = [
            Probe(phase.name, kind, people.new(), f"probe-{phase.name}-{kind}-{index}")
            for index in range(count)
            for kind in ("deciding", "deadline")
        ]
    probes = {p.measure: p for group in by_phase.values() for p in group}
    token = mint(Settings().token_key.get_secret_value(), "bench-watcher", [PROBE_TEAM], now=now())
    load = Load()
    measured: dict[str, dict[str, Any]] = {}
    with running_services(ctx.servers, ctx.log_dir / "latency", env) as platform:
        tls = get_settings().tls  # as the services, which inherit this environment
        channels = {s: aio_channel(platform.address(s), tls) for s in platform.ports}
        stubs = {s: sources_pb2_grpc.SourcesStub(c) for s, c in channels.items() if s != "outcomes"}
        tasks: list[asyncio.Task[None]] = []
        try:
            await _prepare_probes(stubs, list(probes.values()))
            tasks.append(asyncio.create_task(_watcher(platform.address("outcomes"), probes, token)))
            for service, stub in stubs.items():
                load.queues[service] = asyncio.Queue()
                tasks.append(asyncio.create_task(sender(stub, load.queues[service], load)))
            pids = {name: [p.pid] for name, p in platform.processes.items()}
            tasks.append(asyncio.create_task(background(Background(people, seed=11), load)))
            for phase in phases:
                load.rate = phase.rate
                await asyncio.sleep(phase.warmup)
                meter = CpuMeter(pids, ctx.work_dir)
                meter.start()
                started, sent, accepted = time.monotonic(), load.sent, load.accepted
                load.behind = 0.0
                by_phase[phase.name] = await _probe(
                    stubs, by_phase[phase.name], scale.probes_per_second, phase.seconds
                )
                seconds = time.monotonic() - started
                offered = (load.sent - sent) / seconds
                taken = (load.accepted - accepted) / seconds
                behind = load.behind
                # Stop the load, then wait for the stragglers: a probe not received is
                # reported, not dropped from the percentiles' denominator silently.
                load.rate = 0 if phase is phases[-1] else phase.rate
                await _arrived(by_phase[phase.name], scale.latency_drain)
                measured[phase.name] = {
                    "background_offered_per_s": round(offered, 1),
                    "background_accepted_per_s": round(taken, 1),
                    "client_send_queue_max_behind_s": round(behind, 2),
                    "probing_seconds": round(seconds, 1),
                    "cpu_seconds_while_probing": meter.stop(),
                }
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for channel in channels.values():
                await channel.close(grace=None)
    await delete_stream(ctx.servers.nats_url, env["LOS_STREAM"])

    details: dict[str, Any] = {"rejected_background_events": load.rejected}
    for phase in phases:
        group = by_phase[phase.name]
        phase_details = measured.get(phase.name, {})
        for kind in ("deciding", "deadline"):
            mine = [p for p in group if p.kind == kind]
            values = [p.latency for p in mine if p.arrived_at is not None]
            missing = len(mine) - len(values)
            summary = _summary(values)
            phase_details[kind] = {"probes": len(mine), "missing": missing, **summary}
            # Does the latency grow while the load lasts (a backlog building up)?
            quarter = max(1, len(mine) // 4)
            first = [p.latency for p in mine[:quarter] if p.arrived_at is not None]
            last = [p.latency for p in mine[-quarter:] if p.arrived_at is not None]
            phase_details[kind]["p50_first_quarter_ms"] = round(percentile(first, 50) * 1000, 1)
            phase_details[kind]["p50_last_quarter_ms"] = round(percentile(last, 50) * 1000, 1)
            if kind == "deadline":
                phase_details[kind]["raised_at_equals_deadline"] = sum(
                    1
                    for p in mine
                    if p.raised_at is not None and abs(p.raised_at - p.due_at) < 0.002
                )
            offered = phase_details.get("background_offered_per_s", 0.0)
            accepted = phase_details.get("background_accepted_per_s", 0.0)
            what = (
                "deciding event sent → alert at a WatchAlerts client"
                if kind == "deciding"
                else "deadline passed → alert at a WatchAlerts client"
            )
            load_text = (
                f"{phase.rate:,} events/s offered"
                if phase.name == "load"
                else f"light load, {phase.rate}/s"
            )
            for q in ("p50", "p95", "p99"):
                is_target = phase.name == "load" and q == "p99"
                note = ""
                if q == "p99":
                    note = (
                        f"{phase.name} phase, {kind} probes: {len(values)} of {len(mine)}"
                        " received"
                        f" within {scale.latency_drain:.0f} s after the last; background offered"
                        f" {offered:,.0f}/s, accepted {accepted:,.0f}/s"
                    )
                result.figures.append(
                    Figure(
                        key=f"latency_{kind}_{q}"
                        if phase.name == "load"
                        else f"latency_light_{kind}_{q}",
                        label=f"Alert latency {q} ({load_text}), {what}",
                        value=summary[f"{q}_ms"],
                        unit="ms",
                        target="p99 < 500 ms" if is_target else None,
                        met=(summary["p99_ms"] < 500 and missing == 0) if is_target else None,
                        note=note,
                    )
                )
        details[phase.name] = phase_details
    result.details = details
    return result

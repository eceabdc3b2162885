"""The `los` command line as an operator uses it: subprocesses, no terminal, files in and
out, signals to stop. Each test runs `los up` on free ports with its own LOS_DATA_DIR, so
it never meets a `los up` on the default ports, nor the machine's own servers unless
NATS_URL / DATABASE_URL are set (then they are used, each test with its own database,
stream and subjects)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from services.cli.platform import SERVICES
from services.kernel.embedded import Servers, free_port
from tests.support import facts_recorded, fresh_database, isolated_env

LOS = str(Path(sys.executable).with_name("los"))
UNTIL = "2026-01-01T00:00:00Z"
SUMMARY = re.compile(
    r"(?P<lines>\d+) lines: (?P<accepted>\d+) accepted, (?P<duplicates>\d+) duplicates,"
    r" (?P<rejected>\d+) rejected \(see (?P<rejects>.+?)\) in (?P<seconds>[\d.]+) s"
    r" = (?P<per_second>[\d,]+) events/s"
)
SERVICE_LINE = re.compile(r"^(?P<service>intake|journey|employer|outcomes)\s+grpc://(?P<addr>\S+)$")
# What the operator's shell would not pass on: settings of another deployment, and the
# terminal width (rich wraps at 80 columns when there is no terminal).
NOT_INHERITED = ("NATS_URL", "DATABASE_URL", "COLUMNS", "LINES", "FORCE_COLOR")

T = TypeVar("T")


# -- processes, seen through /proc ----------------------------------------------------


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    state: str
    cmdline: str


def processes() -> dict[int, Proc]:
    found: dict[int, Proc] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile
            continue
        state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
        found[int(entry.name)] = Proc(int(entry.name), int(ppid), state, cmdline.strip())
    return found


def ours(root: int, data_dir: Path) -> dict[int, Proc]:
    """Every live process `root` started (its descendants) or that works in `data_dir`
    (pgserver's postgres is daemonised, so it is no child of `los up`)."""
    table = processes()
    children: dict[int, list[int]] = defaultdict(list)
    for proc in table.values():
        children[proc.ppid].append(proc.pid)
    found: dict[int, Proc] = {}
    todo = [root]
    while todo:
        pid = todo.pop()
        if pid in table and table[pid].state != "Z":
            found[pid] = table[pid]
        todo.extend(children.get(pid, []))
    marker = str(data_dir)
    for proc in table.values():
        if marker in proc.cmdline and proc.state != "Z":
            found[proc.pid] = proc
    return found


def still_alive(seen: dict[int, Proc], data_dir: Path) -> dict[int, Proc]:
    """Which of `seen` still run (same pid, same command line), plus anything in data_dir."""
    table = processes()
    alive = {
        pid: table[pid]
        for pid, proc in seen.items()
        if pid in table and table[pid].state != "Z" and table[pid].cmdline == proc.cmdline
    }
    marker = str(data_dir)
    alive |= {p.pid: p for p in table.values() if marker in p.cmdline and p.state != "Z"}
    return alive


def kill(found: dict[int, Proc]) -> None:
    """Last resort in cleanup: end exactly these processes, by pid."""
    for pid in found:
        with suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def ctrl_c_enabled() -> None:
    """For `preexec_fn`: SIGINT as in an operator's terminal. A shell starts background
    jobs (a CI step, `pytest &`) with SIGINT ignored, and children inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def poll(what: str, check: Callable[[], T | None], timeout: float, every: float = 0.2) -> T:
    """`check()` until it gives something, or fail saying what did not happen."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found is not None and found is not False:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(every)


# -- the operator's environment and commands ------------------------------------------


def operator_env(data_dir: Path, given: dict[str, str] | None = None) -> dict[str, str]:
    """The environment an operator runs `los` in: own data dir, free ports, and the
    servers in `given` (none: `los up` starts embedded ones)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in NOT_INHERITED and not key.startswith("LOS_")
    }
    env["LOS_DATA_DIR"] = str(data_dir)
    for service in SERVICES:
        env[f"LOS_{service.upper()}_PORT"] = str(free_port())
    return env | (given or {})


def servers_from_environment() -> dict[str, str]:
    """NATS_URL / DATABASE_URL of the test environment, if set, isolated for one test
    (as tests/conftest.py honours them); else nothing, and `los up` embeds its own."""
    given: dict[str, str] = {}
    if nats_url := os.environ.get("NATS_URL"):
        tag = uuid.uuid4().hex[:8]
        given |= {
            "NATS_URL": nats_url,
            "LOS_STREAM": f"TEST_{tag}",
            "LOS_SUBJECT_PREFIX": f"test{tag}",
            "LOS_DEAD_LETTER_SUBJECT": f"test{tag}.dead",
        }
    if database_url := os.environ.get("DATABASE_URL"):
        given["DATABASE_URL"] = fresh_database(database_url)
    return given


def los(
    *args: str, env: dict[str, str], cwd: Path, timeout: float
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [LOS, *args],
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        command = " ".join(args)
        raise AssertionError(f"`los {command}` did not finish within {timeout:.0f} s") from error


def succeeded(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, (
        f"`{' '.join(map(str, result.args))}` exited {result.returncode}:\n"
        f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result


def generate(path: Path, people: int, seed: int, env: dict[str, str], cwd: Path) -> list[str]:
    succeeded(
        los(
            "generate", "--people", str(people), "--seed", str(seed), "--until", UNTIL,
            "--out", str(path), env=env, cwd=cwd, timeout=300,
        )
    )  # fmt: skip
    return path.read_text(encoding="utf-8").splitlines()


@dataclass(frozen=True)
class Summary:
    lines: int
    accepted: int
    duplicates: int
    rejected: int
    rejects: str
    seconds: float
    per_second: int
    stderr: str


def import_file(
    path: Path, rejects: Path, up: LosUp, *, timeout: float = 900
) -> tuple[Summary, float]:
    """`los import` through the addresses `los up` printed; the summary and wall time."""
    started = time.monotonic()
    result = succeeded(
        los(
            "import", str(path), "--rejects", str(rejects),
            "--intake", up.addresses["intake"],
            "--journey", up.addresses["journey"],
            "--employer", up.addresses["employer"],
            env=up.env, cwd=up.cwd, timeout=timeout,
        )
    )  # fmt: skip
    wall = time.monotonic() - started
    # Parsed with line breaks taken as spaces: whether the line itself is whole is
    # checked on its own (test_import_reports_bad_lines_with_line_numbers).
    found = SUMMARY.search(" ".join(result.stderr.split()))
    assert found, f"no import summary in the output of `los import`:\n{result.stderr[-3000:]}"
    summary = Summary(
        lines=int(found["lines"]),
        accepted=int(found["accepted"]),
        duplicates=int(found["duplicates"]),
        rejected=int(found["rejected"]),
        rejects=found["rejects"],
        seconds=float(found["seconds"]),
        per_second=int(found["per_second"].replace(",", "")),
        stderr=result.stderr,
    )
    return summary, wall


class LosUp:
    """`los up` as a subprocess, its output in files (a pipe nobody reads could block it)."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env = env
        self.cwd = cwd
        self.data_dir = Path(env["LOS_DATA_DIR"])
        self.stdout = cwd / "up.stdout"
        self.stderr = cwd / "up.stderr"
        self.addresses: dict[str, str] = {}
        self.seen: dict[int, Proc] = {}
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.process = subprocess.Popen(
                [LOS, "up"], env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=err
            )

    def output(self) -> str:
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")

    def lines(self) -> list[str]:
        return [line.rstrip() for line in self.output().splitlines()]

    def wait_ready(self, timeout: float = 180) -> dict[str, str]:
        """Until the output lists the four services (it does so once they are healthy)."""

        def listed() -> dict[str, str] | None:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"`los up` exited {self.process.returncode} before it was ready:\n"
                    f"{self.output()[-3000:]}\n{self.service_logs()}"
                )
            found = {
                m["service"]: m["addr"] for line in self.lines() if (m := SERVICE_LINE.match(line))
            }
            return found if len(found) == len(SERVICES) else None

        try:
            self.addresses = poll("`los up` listing its four services", listed, timeout)
        except AssertionError as error:
            raise AssertionError(f"{error}\n{self.output()[-8000:]}") from None
        self.seen = ours(self.process.pid, self.data_dir)
        return self.addresses

    def service_logs(self) -> str:
        logs = sorted((self.data_dir / "logs").glob("*.log"))
        return "\n".join(
            f"--- {log.name}\n{log.read_text(errors='replace')[-1500:]}" for log in logs
        )

    def terminate(self, timeout: float = 30) -> int | None:
        """SIGTERM, as a service manager stops it; its exit code, or None if it hangs."""
        seen = self.seen | ours(self.process.pid, self.data_dir)
        self.seen = seen
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def cleanup(self) -> None:
        """In `finally`: whatever is left of this `los up` and what it started, by pid."""
        if self.process.poll() is None and self.terminate() is None:
            self.process.kill()
            self.process.wait()
        with_deadline = time.monotonic() + 15
        while (left := still_alive(self.seen, self.data_dir)) and time.monotonic() < with_deadline:
            time.sleep(0.2)
        kill(left)


@contextmanager
def los_up(env: dict[str, str], cwd: Path) -> Iterator[LosUp]:
    up = LosUp(env, cwd)
    try:
        yield up
    finally:
        up.cleanup()


def assert_stops_cleanly(up: LosUp) -> float:
    """SIGTERM ends `los up` within 30 s, with 0 or by the signal, and with it every
    process it started. Returns how long it took."""
    started = time.monotonic()
    code = up.terminate(30)
    took = time.monotonic() - started
    assert code is not None, f"`los up` still running 30 s after SIGTERM:\n{up.output()[-3000:]}"
    assert code in (0, -signal.SIGTERM), (
        f"`los up` exited {code} on SIGTERM:\n{up.output()[-3000:]}\n{up.service_logs()}"
    )
    try:
        poll(
            "every process `los up` started gone after it exited",
            lambda: not still_alive(up.seen, up.data_dir),
            timeout=15,
        )
    except AssertionError as error:
        left = still_alive(up.seen, up.data_dir)
        listing = "\n".join(f"{p.pid} {p.cmdline}" for p in left.values())
        raise AssertionError(f"{error}; left behind:\n{listing}") from None
    return took


# -- reading the generated file -------------------------------------------------------


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class Recipients:
    """Who could get which HANDOVER_GAP, read from the JSONL alone."""

    # coordinator -> the measure and placement ids of everyone ever assigned to them
    subjects: dict[str, set[str]]
    # coordinator -> subjects of the handover gaps a rough reading of CONTRACT §4 expects
    expected: dict[str, list[str]]


def read_recipients(lines: list[str]) -> Recipients:
    """A rough, independent reading of the file: per person, in business time, the
    moments the active engagements drop to zero and nothing starts within 14 days (7
    after an unplanned end) nor does the journey close; the coordinator at the deadline
    is whom the alert should go to. Only used to pick a coordinator likely to have gaps;
    what is asserted is that the subjects of their alerts are their people's."""
    by_person: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in lines:
        event = json.loads(line)
        by_person[event["person"]].append(event)
    until = parse_time(UNTIL)
    subjects: dict[str, set[str]] = defaultdict(set)
    expected: dict[str, list[str]] = defaultdict(list)
    for events in by_person.values():
        events.sort(key=lambda e: parse_time(e["occurred_at"]))
        ids = {
            e["data"].get("measure_id") or e["data"].get("placement_id")
            for e in events
            if e["type"] in ("measure.started", "placement.started")
        }
        assigned = {
            e["data"]["coordinator_id"] for e in events if e["type"] == "coordinator.assigned"
        }
        for coordinator in assigned:
            subjects[coordinator] |= ids
        active: set[str] = set()
        gaps: list[tuple[str, datetime, datetime]] = []
        for event in events:
            data, kind = event["data"], event["type"]
            at = parse_time(event["occurred_at"])
            before = set(active)
            unplanned = False
            if kind == "measure.started":
                active.add(data["measure_id"])
            elif kind == "placement.started":
                active.add(data["placement_id"])
            elif kind == "measure.ended":
                active.discard(data["measure_id"])
                unplanned = data["status"] == "AVBRUTT" or data["reason"] == "IKKE_MOTT"
            elif kind == "placement.ended":
                active.discard(data["placement_id"])
                unplanned = data["reason"] in ("QUIT", "DISMISSED")
            elif kind == "participant.dropped_out":
                active.clear()
                unplanned = True
            if before and not active:
                last = data.get("measure_id") or data.get("placement_id") or sorted(before)[0]
                gaps.append((last, at, at + timedelta(days=7 if unplanned else 14)))
        for subject, ended_at, deadline in gaps:
            if deadline > until:
                continue
            followed = any(
                e["type"] in ("measure.started", "placement.started", "journey.closed")
                and ended_at < parse_time(e["occurred_at"]) <= deadline
                for e in events
            )
            if followed:
                continue
            coordinator = None
            for e in events:
                if parse_time(e["occurred_at"]) > deadline:
                    break
                if e["type"] == "coordinator.assigned":
                    coordinator = e["data"]["coordinator_id"]
                elif e["type"] == "coordinator.unassigned":
                    coordinator = None
            if coordinator:
                expected[coordinator].append(subject)
    return Recipients(dict(subjects), dict(expected))


@dataclass(frozen=True)
class WatchLine:
    cursor: int
    change: str
    rule: str
    subject: str
    raised_at: datetime
    status: str
    resolution: str


def parse_watch_line(line: str) -> WatchLine:
    fields = line.split("\t")
    assert len(fields) == 7, f"`los alerts watch` line without 7 tab-separated fields: {line!r}"
    cursor, change, rule, subject, raised_at, status, resolution = fields
    assert cursor.isdigit(), f"cursor is not a number: {line!r}"
    assert status in ("open", "resolved"), f"status is not open/resolved: {line!r}"
    return WatchLine(int(cursor), change, rule, subject, parse_time(raised_at), status, resolution)


def report_figures(tmp_path: Path, text: str) -> None:
    print(text)
    (tmp_path / "import-figures.txt").write_text(text + "\n", encoding="utf-8")


# -- the tests ------------------------------------------------------------------------


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """LOS_DATA_DIR for one test, outside pytest's tmp folder: when root runs the tests,
    pgserver runs PostgreSQL as the user `pgserver`, which must traverse the path, and
    every pytest session that starts meanwhile makes /tmp/pytest-of-root private again
    (then initdb fails). Short, too, for the Unix socket of PostgreSQL in it. The service
    logs are kept in tmp_path."""
    folder = Path(tempfile.mkdtemp(prefix="los-e2e-"))
    try:
        yield folder
    finally:
        if (folder / "logs").is_dir():
            shutil.copytree(folder / "logs", tmp_path / "los-logs", dirs_exist_ok=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.servers
@pytest.mark.timeout(1800)
def test_los_up_generate_import_twice_and_watch(data_dir: Path, tmp_path: Path) -> None:
    env = operator_env(data_dir, servers_from_environment())
    embedded = "NATS_URL" not in env and "DATABASE_URL" not in env
    events = tmp_path / "cohort.jsonl"
    with los_up(env, tmp_path) as up:
        # The cohort is generated while the platform starts, as an operator would.
        lines = generate(events, 13000, 5, env, tmp_path)
        assert len(lines) >= 95_000, f"only {len(lines)} events for 13,000 people"

        addresses = up.wait_ready()
        assert addresses == {s: f"127.0.0.1:{env[f'LOS_{s.upper()}_PORT']}" for s in SERVICES}, (
            "`los up` does not serve on the ports LOS_*_PORT give"
        )
        if embedded:
            commands = " ".join(p.cmdline for p in up.seen.values())
            assert "nats-server" in commands, f"no embedded nats-server seen: {up.seen}"
            assert "postgres" in commands, f"no embedded postgres seen: {up.seen}"

        first, first_wall = import_file(events, tmp_path / "rejects-1.jsonl", up)
        second, second_wall = import_file(events, tmp_path / "rejects-2.jsonl", up)
        report_figures(
            tmp_path,
            f"los import of {first.lines} events (2-core machine):\n"
            f"  first:  {first.seconds:.1f} s = {first.per_second} events/s"
            f" ({first.accepted} accepted; wall {first_wall:.1f} s)\n"
            f"  second: {second.seconds:.1f} s = {second.per_second} events/s"
            f" ({second.duplicates} duplicates; wall {second_wall:.1f} s)",
        )

        assert first.lines == len(lines)
        assert first.rejected == 0, (tmp_path / "rejects-1.jsonl").read_text()[:3000]
        assert (tmp_path / "rejects-1.jsonl").read_text() == ""
        assert (first.accepted, first.duplicates) == (len(lines), 0)
        assert (second.lines, second.accepted, second.duplicates, second.rejected) == (
            len(lines), 0, len(lines), 0,
        ), "importing the same file again must change nothing"  # fmt: skip

        recipients = read_recipients(lines)
        assert recipients.expected, "the file holds no handover gap with a coordinator"
        coordinator = max(recipients.expected, key=lambda c: (len(recipients.expected[c]), c))
        theirs = recipients.subjects[coordinator]
        # The operator mints the coordinator's bearer token for the Alerts API.
        token = succeeded(
            los("token", "--coordinator", coordinator, env=env, cwd=tmp_path, timeout=60)
        ).stdout.strip()
        assert token, "`los token` printed no token"
        watch_out = tmp_path / "watch.stdout"
        with watch_out.open("wb") as out, (tmp_path / "watch.stderr").open("wb") as err:
            watcher = subprocess.Popen(
                [LOS, "alerts", "watch", "--token", token, "--coordinator", coordinator,
                 "--outcomes", addresses["outcomes"]],
                env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                preexec_fn=ctrl_c_enabled,
            )  # fmt: skip
        try:

            def handover_gap() -> WatchLine | None:
                if watcher.poll() is not None:
                    raise AssertionError(
                        f"`los alerts watch` exited {watcher.returncode}:\n"
                        f"{(tmp_path / 'watch.stderr').read_text()[-3000:]}"
                    )
                text = watch_out.read_text()
                complete = text[: text.rfind("\n") + 1].splitlines()
                updates = [parse_watch_line(line) for line in complete]
                gaps = [u for u in updates if u.rule == "HANDOVER_GAP"]
                strangers = [u for u in gaps if u.subject not in theirs]
                assert not strangers, (
                    f"HANDOVER_GAP for {coordinator} about a subject none of their people"
                    f" has in the file: {strangers[:5]}"
                )
                return gaps[0] if gaps else None

            try:
                gap = poll(f"a HANDOVER_GAP line for {coordinator}", handover_gap, timeout=300)
            except AssertionError as error:
                raise AssertionError(
                    f"{error}; expected subjects {recipients.expected[coordinator]};"
                    f" printed:\n{watch_out.read_text()[-3000:]}\n{up.service_logs()}"
                ) from None
            assert gap.subject in theirs
            # Live, the clock goes on to the wall clock: gaps due after --until come too.
            assert gap.raised_at <= datetime.now(UTC)
        finally:
            watcher.send_signal(signal.SIGINT)  # Ctrl-C
            try:
                watch_code = watcher.wait(10)
            except subprocess.TimeoutExpired:
                watcher.kill()
                watcher.wait()
                raise AssertionError("`los alerts watch` still running 10 s after Ctrl-C") from None
        assert watch_code in (0, 130, -signal.SIGINT), f"`los alerts watch` exited {watch_code}"

        took = assert_stops_cleanly(up)
        print(f"los up stopped {took:.1f} s after SIGTERM")


@pytest.mark.servers
def test_import_reports_bad_lines_with_line_numbers(data_dir: Path, tmp_path: Path) -> None:
    env = operator_env(data_dir, servers_from_environment())
    with los_up(env, tmp_path) as up:
        good = generate(tmp_path / "small.jsonl", 20, 11, env, tmp_path)
        assert len(good) > 20

        def broken(source: str, **changes: Any) -> tuple[str, dict[str, Any]]:
            event = json.loads(source) | {"event_id": str(uuid.uuid4())} | changes
            return json.dumps(event), event

        person = json.loads(good[3])["person"]
        bad_person = person[:10] + str((int(person[10]) + 1) % 10)
        bad_digit, bad_digit_event = broken(good[3], person=bad_person)
        unknown_type, unknown_type_event = broken(good[5], type="measure.paused")
        not_json = good[7][: len(good[7]) // 2]  # cut off mid-line

        # File line numbers start at 1: the broken lines go in between the good ones.
        lines = [*good]
        lines.insert(2, not_json)  # line 3
        lines.insert(6, bad_digit)  # line 7
        lines.append(good[0])  # a repeat of line 1: one duplicate
        lines.append(unknown_type)  # the last line
        path = tmp_path / "with-bad-lines.jsonl"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        expected = {
            3: ("", None),
            7: ("person", bad_digit_event["event_id"]),
            len(lines): ("type", unknown_type_event["event_id"]),
        }

        up.wait_ready()
        rejects = tmp_path / "rejects.jsonl"
        summary, _ = import_file(path, rejects, up, timeout=300)

        assert summary.lines == len(lines)
        assert (summary.accepted, summary.duplicates, summary.rejected) == (len(good), 1, 3), (
            summary.stderr
        )
        assert "".join(summary.rejects.split()) == str(rejects)  # however it was wrapped
        records = [json.loads(line) for line in rejects.read_text().splitlines()]
        for record in records:
            assert set(record) >= {"line", "event_id", "field", "reason"}, record
            assert record["reason"], record
        by_line = {record["line"]: record for record in records}
        assert sorted(by_line) == sorted(expected), records
        for number, (field, event_id) in expected.items():
            record = by_line[number]
            assert record["field"] == field, record
            if event_id is not None:
                assert record["event_id"] == event_id, record
        assert "JSON" in by_line[3]["reason"], by_line[3]
        assert bad_person not in json.dumps(records), "a rejection repeats the national id"

        assert_stops_cleanly(up)
        # Last, as it is about presentation: the summary is one line an operator's script
        # can grep, whatever the length of the paths in it.
        whole = [line for line in summary.stderr.splitlines() if SUMMARY.fullmatch(line.strip())]
        assert whole, (
            "the import summary is not printed on one line when there is no terminal:\n"
            f"{summary.stderr}"
        )


@pytest.mark.servers
def test_los_up_uses_given_servers(real_servers: Servers, data_dir: Path, tmp_path: Path) -> None:
    given = isolated_env(real_servers)
    env = operator_env(data_dir, given)
    with los_up(env, tmp_path) as up:
        lines = generate(tmp_path / "cohort.jsonl", 60, 3, env, tmp_path)
        up.wait_ready()

        started = {pid: p.cmdline for pid, p in up.seen.items() if pid != up.process.pid}
        servers_started = {
            pid: cmd for pid, cmd in started.items() if "nats-server" in cmd or "postgres" in cmd
        }
        assert not servers_started, f"`los up` started servers of its own: {servers_started}"
        assert len(started) == len(SERVICES), f"expected the four services only: {started}"
        assert not (up.data_dir / "nats").exists(), "an embedded NATS store was made"
        assert not (up.data_dir / "pg").exists(), "an embedded PostgreSQL cluster was made"

        summary, _ = import_file(tmp_path / "cohort.jsonl", tmp_path / "rejects.jsonl", up)
        assert (summary.lines, summary.accepted, summary.rejected) == (len(lines), len(lines), 0)
        # The events reached the given database, through the given NATS.
        poll(
            f"outcomes holding the {len(lines)} imported facts in the given database",
            lambda: facts_recorded(given["DATABASE_URL"]) == len(lines),
            timeout=120,
        )

        assert_stops_cleanly(up)
        # Last, as it is about presentation: the addresses are printed whole.
        printed = up.lines()
        for label, url in (("NATS", given["NATS_URL"]), ("PostgreSQL", given["DATABASE_URL"])):
            assert f"{label:<10} {url}" in printed, (
                f"`los up` does not print the {label} URL it uses on one line:\n"
                + "\n".join(printed)
            )

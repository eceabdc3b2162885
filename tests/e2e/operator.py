"""The `los` command line as an operator runs it, for the end-to-end tests: the
environment an operator's shell passes on, `los` and its subcommands as subprocesses,
`los up` started and stopped with Ctrl-C, and the generated cohort read for what it
should raise."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from services.cli.platform import SERVICES
from services.kernel.embedded import free_port
from tests.e2e.processes import Proc, kill, ours, poll, still_alive
from tests.support import fresh_bus, fresh_database

LOS = str(Path(sys.executable).with_name("los"))
UNTIL = "2026-01-01T00:00:00Z"
SUMMARY = re.compile(
    r"(?P<lines>\d+) lines: (?P<accepted>\d+) accepted, (?P<duplicates>\d+) duplicates,"
    r" (?P<held>\d+) held until their start comes,"
    r" (?P<rejected>\d+) rejected \(see (?P<rejects>.+?)\) in (?P<seconds>[\d.]+) s"
    r" = (?P<per_second>[\d,]+) events/s"
)
SERVICE_LINE = re.compile(
    r"^(?P<service>intake|journey|employer|outcomes)\s+(?P<scheme>grpcs?)://(?P<addr>\S+)$"
)
# What the operator's shell would not pass on: settings of another deployment, and the
# terminal width (rich wraps at 80 columns when there is no terminal).
NOT_INHERITED = ("NATS_URL", "DATABASE_URL", "COLUMNS", "LINES", "FORCE_COLOR")


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
        given |= fresh_bus(nats_url)
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
    held: int
    rejected: int
    rejects: str
    seconds: float
    per_second: int
    stderr: str


def import_file(
    path: Path, rejects: Path, up: LosUp, *options: str, timeout: float = 900
) -> tuple[Summary, float]:
    """`los import` through the addresses `los up` printed, with `options` (such as a
    `--token`); the summary and wall time."""
    started = time.monotonic()
    result = succeeded(
        los(
            "import", str(path), "--rejects", str(rejects), *up.source_options(), *options,
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
        held=int(found["held"]),
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

    def source_options(self) -> list[str]:
        """`--intake ADDRESS --journey ... --employer ...`, as `los up` printed them."""
        return [f"--{s}={self.addresses[s]}" for s in ("intake", "journey", "employer")]

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

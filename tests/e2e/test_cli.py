"""The `los` command line as an operator uses it: subprocesses, no terminal, files in and
out, signals to stop. Each test runs `los up` on free ports with its own LOS_DATA_DIR, so
it never meets a `los up` on the default ports, nor the machine's own servers unless
NATS_URL / DATABASE_URL are set (then they are used, each test with its own database,
stream and subjects)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from services.cli.platform import SERVICES
from services.kernel.embedded import Servers
from services.kernel.events import owner
from tests.e2e.operator import (
    LOS,
    SUMMARY,
    WatchLine,
    assert_stops_cleanly,
    generate,
    import_file,
    los,
    los_up,
    operator_env,
    parse_time,
    parse_watch_line,
    report_figures,
    servers_from_environment,
    succeeded,
)
from tests.e2e.processes import ctrl_c_enabled, poll
from tests.e2e.recipients import read_recipients
from tests.support import facts_recorded, isolated_env


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

        # The same token shows the coordinator's caseload: the people the file leaves them,
        # once outcomes has taken in every fact.
        expected = recipients.caseloads.get(coordinator, 0)
        shown_last: list[str] = []

        def caseload() -> str | None:
            shown = succeeded(
                los("caseload", "--token", token, "--outcomes", addresses["outcomes"],
                    env=env, cwd=tmp_path, timeout=60)
            ).stdout  # fmt: skip
            heading = re.search(
                r"The caseload of the token's coordinator: (\d+) participants? \(cap 25\)",
                shown,
            )
            assert heading, shown
            shown_last[:] = [shown]
            return shown if int(heading[1]) == expected else None

        try:
            poll(f"{expected} people in the caseload of {coordinator}", caseload, timeout=120)
        except AssertionError as error:
            raise AssertionError(f"{error}; shown last:\n{shown_last[0]}") from None

        took = assert_stops_cleanly(up)
        print(f"los up stopped {took:.1f} s after SIGTERM")


CHECKED = re.compile(
    r"(\d+) lines: (\d+) accepted, (\d+) held until their start comes, (\d+) refused when"
    r" their start came, (\d+) not known \(rejected when sent, or never sent\), (\d+) unreadable"
)


@pytest.mark.servers
def test_import_reports_bad_lines_with_line_numbers(data_dir: Path, tmp_path: Path) -> None:
    env = operator_env(data_dir, servers_from_environment())
    with los_up(env, tmp_path) as up:
        good = generate(tmp_path / "small.jsonl", 20, 11, env, tmp_path)
        assert len(good) > 20

        def broken(line: str, **changes: Any) -> tuple[str, dict[str, Any]]:
            event = json.loads(line) | {"event_id": str(uuid.uuid4())} | changes
            return json.dumps(event), event

        person = json.loads(good[3])["person"]
        bad_person = person[:10] + str((int(person[10]) + 1) % 10)
        bad_digit, bad_digit_event = broken(good[3], person=bad_person)
        unknown_type, unknown_type_event = broken(good[5], type="measure.paused")
        not_json = good[7][: len(good[7]) // 2]  # cut off mid-line
        an_end = next(line for line in good if json.loads(line)["type"] == "measure.ended")
        end_data = json.loads(an_end)["data"] | {"measure_id": "never-started"}
        waiting, _ = broken(an_end, data=end_data)
        # An end whose start comes, but recorded more than the hold (P7D) after it.
        late_end, late_end_event = broken(an_end, data=end_data | {"measure_id": "late"})
        a_start = next(line for line in good if json.loads(line)["type"] == "measure.started")
        late_start, _ = broken(
            a_start,
            data=json.loads(a_start)["data"] | {"measure_id": "late"},
            person=late_end_event["person"],
            source=late_end_event["source"],  # a measure's id is unique per source system
            recorded_at=(parse_time(late_end_event["recorded_at"]) + timedelta(days=8)).isoformat(),
        )

        # File line numbers start at 1: the broken lines go in between the good ones.
        lines = [*good]
        lines.insert(2, not_json)  # line 3
        lines.insert(6, bad_digit)  # line 7
        lines.append(good[0])  # a repeat of line 1: one duplicate
        lines.append(waiting)  # an end whose start never comes: held, not rejected
        lines.append(late_end)  # held too, then refused when its late start comes
        lines.append(late_start)
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
        found = (summary.accepted, summary.duplicates, summary.held, summary.rejected)
        assert found == (len(good) + 1, 1, 2, 3), summary.stderr
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

        # Afterwards, what became of each line: the held ends were decided since.
        states = tmp_path / "states.jsonl"
        checked = succeeded(
            los(
                "check", str(path), "--out", str(states), *up.source_options(),
                env=up.env, cwd=up.cwd, timeout=120,
            )
        )  # fmt: skip
        counts = CHECKED.search(" ".join(checked.stderr.split()))
        assert counts, checked.stderr
        # The good lines, their repeat and the late start were accepted.
        assert counts.groups() == (str(len(lines)), str(len(good) + 2), "1", "1", "0", "3")
        listed = {
            record["line"]: (record["state"], record["field"], record["event_id"])
            for record in map(json.loads, states.read_text().splitlines())
        }
        assert listed == {
            3: ("INVALID", "", ""),
            7: ("INVALID", "person", bad_digit_event["event_id"]),
            len(lines) - 3: ("HELD", "data.measure_id", json.loads(waiting)["event_id"]),
            len(lines) - 2: ("REFUSED", "data.measure_id", late_end_event["event_id"]),
            len(lines): ("INVALID", "type", unknown_type_event["event_id"]),
        }

        # Every question was recorded before it was answered: who asked (the importer's
        # own token, "los") about whom (by pseudonym), in the service's schema.
        database_url = re.search(r"PostgreSQL\s+(\S+)", up.output())
        assert database_url, up.output()
        asked: dict[str, set[str]] = {}
        for number, line in enumerate(lines, start=1):
            if number not in expected:  # the three lines that could not be asked about
                event = json.loads(line)
                asked.setdefault(owner(event["type"]), set()).add(event["person"])
        with psycopg.connect(database_url[1]) as conn:
            for service, people in asked.items():
                checks = sql.Identifier(service, "event_checks")
                readers, participants = conn.execute(
                    sql.SQL(
                        "SELECT array_agg(DISTINCT reader), count(DISTINCT participant) FROM {}"
                    ).format(checks)
                ).fetchone() or (None, None)
                assert (readers, participants) == (["los"], len(people)), service

        # A municipality's client, with its own token, may send only as a municipality.
        minted = los(
            "token", "--source", "kommune", "--client", "oslo",
            env=up.env, cwd=up.cwd, timeout=60,
        )  # fmt: skip
        token = succeeded(minted).stdout.strip()
        again, _ = import_file(
            tmp_path / "small.jsonl", tmp_path / "rejects-kommune.jsonl", up, "--token", token
        )
        theirs = [json.loads(line)["source"]["system"] == "kommune" for line in good]
        assert 0 < sum(theirs) < len(good), "the file should hold some kommune events"
        assert (again.accepted, again.duplicates, again.rejected) == (
            0, sum(theirs), len(good) - sum(theirs),
        ), again.stderr  # fmt: skip
        refused = [json.loads(line) for line in (tmp_path / "rejects-kommune.jsonl").open()]
        assert {(r["field"], r["reason"]) for r in refused} == {
            ("source.system", "oslo may send for kommune only")
        }
        assert sorted(r["line"] for r in refused) == [
            number for number, kommune in enumerate(theirs, start=1) if not kommune
        ]
        # A coordinator's token opens the Alerts API, not the sources'.
        coordinators = succeeded(
            los("token", "--coordinator", "c-001", env=up.env, cwd=up.cwd, timeout=60)
        ).stdout.strip()
        refused_check = los(
            "check", str(path), "--out", str(states), *up.source_options(),
            env=up.env | {"LOS_SOURCE_TOKEN": coordinators}, cwd=up.cwd, timeout=120,
        )  # fmt: skip
        assert refused_check.returncode == 1, refused_check.stderr
        assert "check stopped: UNAUTHENTICATED: the token is not valid" in " ".join(
            refused_check.stderr.split()
        )

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

"""Outcomes' own tables beside the journey store (which the `eventsourcing` library makes):
alerts and their log, deadlines, caseloads, the rule engines' states, and the records of
who read what. Made, and brought up to this version, when outcomes starts.
"""

from __future__ import annotations

import asyncpg

# Outcomes instances that start together make and change the tables one at a time.
_SCHEMA_LOCK = 0x4C6F73_5C4E4

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS outcomes.alerts (
    alert_id text PRIMARY KEY,
    participant text NOT NULL,
    rule text NOT NULL,
    subject text NOT NULL,
    coordinator text,
    org_unit text,
    raised_at timestamptz NOT NULL,
    status text NOT NULL,
    resolved_at timestamptz,
    resolution text,
    acknowledged_by text,
    acknowledged_at timestamptz
);
CREATE INDEX IF NOT EXISTS alerts_coordinator ON outcomes.alerts (coordinator, raised_at);
CREATE INDEX IF NOT EXISTS alerts_org_unit ON outcomes.alerts (org_unit, raised_at);
CREATE INDEX IF NOT EXISTS alerts_participant ON outcomes.alerts (participant);
CREATE TABLE IF NOT EXISTS outcomes.alert_log (
    cursor bigserial PRIMARY KEY,
    alert_id text NOT NULL,
    change text NOT NULL,
    coordinator text,
    org_unit text,
    alert jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS alert_log_coordinator ON outcomes.alert_log (coordinator, cursor);
CREATE INDEX IF NOT EXISTS alert_log_org_unit ON outcomes.alert_log (org_unit, cursor);
CREATE TABLE IF NOT EXISTS outcomes.deadlines (
    participant text PRIMARY KEY,
    due_at timestamptz NOT NULL,
    partition int
);
-- Made before outcomes shared the partitions: engine.py fills the partitions in at start.
ALTER TABLE outcomes.deadlines ADD COLUMN IF NOT EXISTS partition int;
CREATE INDEX IF NOT EXISTS deadlines_due ON outcomes.deadlines (due_at);
CREATE TABLE IF NOT EXISTS outcomes.journey_reads (
    at timestamptz NOT NULL,
    reader text NOT NULL,
    participant text NOT NULL
);
-- Every `los replay --store` and `los export --store`, written before it reads (history.py).
CREATE TABLE IF NOT EXISTS outcomes.history_reads (
    at timestamptz NOT NULL,
    reader text NOT NULL,
    until timestamptz NOT NULL,
    study text NOT NULL,
    -- `replay` or `export`; the default names the reads from before exports read it.
    command text NOT NULL DEFAULT 'replay'
);
ALTER TABLE outcomes.history_reads ADD COLUMN IF NOT EXISTS command text NOT NULL DEFAULT 'replay';
-- Whose caseload each person is in, now and as planned ahead (caseload.py).
CREATE TABLE IF NOT EXISTS outcomes.caseload (
    participant text NOT NULL,
    coordinator text,
    org_unit text,
    since timestamptz NOT NULL,
    until timestamptz
);
CREATE INDEX IF NOT EXISTS caseload_participant ON outcomes.caseload (participant);
CREATE INDEX IF NOT EXISTS caseload_coordinator ON outcomes.caseload (coordinator);
CREATE INDEX IF NOT EXISTS caseload_org_unit ON outcomes.caseload (org_unit);
-- A row once the caseloads of a store from before they were kept are filled (caseload.py).
CREATE TABLE IF NOT EXISTS outcomes.caseload_filled (id int PRIMARY KEY);
-- Each rule engine's state, by its owner's name (owner.py).
CREATE TABLE IF NOT EXISTS outcomes.rule_state (
    id text PRIMARY KEY,
    position bigint NOT NULL,
    clock timestamptz,
    watermarks jsonb NOT NULL
);
-- Made before outcomes shared the partitions, its one row (1) was the engine of them all.
DO $$
BEGIN
    IF (SELECT data_type FROM information_schema.columns WHERE table_schema = 'outcomes'
        AND table_name = 'rule_state' AND column_name = 'id') = 'integer' THEN
        ALTER TABLE outcomes.rule_state ALTER COLUMN id TYPE text USING 'outcomes';
    END IF;
END $$;
"""


async def create_tables(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _SCHEMA_LOCK)
        await conn.execute(SCHEMA_SQL)

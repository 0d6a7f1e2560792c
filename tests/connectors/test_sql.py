"""The SQL connector: an in-house system's table as a platform, on SQLite and on a real
PostgreSQL (127.0.0.1:5432; skipped with the reason when it is not running)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from calmesh.config import parse_config
from calmesh.connectors.base import NotFoundError, PreconditionFailed, UnsupportedOperation
from calmesh.connectors.sql import SQLConnector, SQLSettings
from calmesh.model import (
    MARKER_PROPERTY,
    BusyType,
    CalendarItem,
    Event,
    EventStatus,
    ItemRef,
    Window,
)
from calmesh.services import availability
from calmesh.services.hub import Hub

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
COLUMNS = {"id": "id", "calendar": "owner", "start": "starts_at", "end": "ends_at", "title": "name",
           "status": "state", "show_as": "show_as", "updated": "updated_at", "marker": "origin"}
WEEK = Window(datetime(2026, 11, 30, tzinfo=UTC), datetime(2026, 12, 5, tzinfo=UTC))


def _postgres_available() -> bool:
    try:
        with sa.create_engine(PG_URL, connect_args={"connect_timeout": 2}).connect():
            return True
    except Exception:  # noqa: BLE001 - any failure means "not here"
        return False


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'projects.db'}"
    else:
        if not _postgres_available():
            pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
        url = PG_URL
    table = f"meetings_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    meetings = sa.Table(
        table, meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("starts_at", sa.DateTime, nullable=False),
        sa.Column("ends_at", sa.DateTime, nullable=False),
        sa.Column("name", sa.String(200)),
        sa.Column("state", sa.String(20)),
        sa.Column("show_as", sa.String(20)),
        sa.Column("updated_at", sa.DateTime),
        sa.Column("origin", sa.String(300)),
    )
    meta.create_all(engine)
    blank = {"state": None, "show_as": None}
    with engine.begin() as conn:  # naive local times, as in-house tools usually store them
        conn.execute(meetings.insert(), [{**blank, **row} for row in [
            {"owner": "emma@agency.example", "starts_at": datetime(2026, 12, 1, 14), "ends_at": datetime(2026, 12, 1, 15),
             "name": "Atlas review", "state": "confirmed", "show_as": "busy"},
            {"owner": "emma@agency.example", "starts_at": datetime(2026, 12, 2, 9), "ends_at": datetime(2026, 12, 2, 10),
             "name": "Dropped", "state": "cancelled"},
            {"owner": "emma@agency.example", "starts_at": datetime(2026, 12, 3, 0), "ends_at": datetime(2026, 12, 4, 0),
             "name": "Offsite", "show_as": "oof"},
            {"owner": "farid@agency.example", "starts_at": datetime(2026, 12, 1, 10), "ends_at": datetime(2026, 12, 1, 11),
             "name": "Standup"},
        ]])
    try:
        yield url, table
    finally:
        meta.drop_all(engine)
        engine.dispose()


def connector(url: str, table: str, writable: bool = True) -> SQLConnector:
    return SQLConnector("projects", SQLSettings(kind="sql", url=url, table=table, columns=COLUMNS,
                                                writable=writable, timezone="Europe/Paris"))


def test_reads_rows_as_events(database: tuple[str, str]) -> None:
    c = connector(*database)
    assert sorted(cal.id for cal in c.calendars()) == ["emma@agency.example", "farid@agency.example"]
    events, problems = c.events("emma@agency.example", WEEK)
    assert not problems
    by_title = {e.summary: e for e in events}
    assert by_title["Atlas review"].span_utc()[0] == datetime(2026, 12, 1, 13, tzinfo=UTC)  # 14:00 Paris
    assert by_title["Dropped"].status is EventStatus.CANCELLED
    assert by_title["Offsite"].effective_busy_type() is BusyType.BUSY_UNAVAILABLE


def test_free_busy_through_the_hub(database: tuple[str, str]) -> None:
    url, table = database
    config = parse_config(f"""
[hub]
timezone = "Europe/Paris"
[platforms.projects]
kind = "sql"
url = "{url}"
table = "{table}"
columns = {{ id = "id", calendar = "owner", start = "starts_at", end = "ends_at", title = "name", status = "state", show_as = "show_as" }}
[[people]]
email = "emma@agency.example"
platform = "projects"
""")
    with Hub(config) as hub:
        (emma,) = availability.freebusy(hub, ["emma@agency.example"], WEEK)
    assert [(p.start, p.type) for p in emma.busy] == [
        (datetime(2026, 12, 1, 13, tzinfo=UTC), BusyType.BUSY),
        (datetime(2026, 12, 2, 23, tzinfo=UTC), BusyType.BUSY_UNAVAILABLE)]


def test_writes_with_etags_and_marker(database: tuple[str, str]) -> None:
    c = connector(*database)
    event = Event("new@calmesh", datetime(2026, 12, 4, 9, tzinfo=UTC), datetime(2026, 12, 4, 10, tzinfo=UTC),
                  "Booked by calmesh", extra={MARKER_PROPERTY: "zoho/alice/1"})
    ref = c.put("emma@agency.example", CalendarItem(event.uid, [event]))
    items, _ = c.items("emma@agency.example")
    mine = next(i for i in items if i.ref and i.ref.id == ref.id)
    assert mine.marker == "zoho/alice/1" and mine.master and mine.master.summary == "Booked by calmesh"
    new_ref = c.put("emma@agency.example", CalendarItem(event.uid, [event.with_changes(summary="Moved")], ref),
                    if_match=ref.etag)
    with pytest.raises(PreconditionFailed):
        c.put("emma@agency.example", CalendarItem(event.uid, [event], ref), if_match=ref.etag)
    token = c.changes("emma@agency.example", None).token
    assert not c.changes("emma@agency.example", token).changed
    c.delete("emma@agency.example", new_ref, if_match=new_ref.etag)
    assert c.changes("emma@agency.example", token).complete
    with pytest.raises(NotFoundError):
        c.delete("emma@agency.example", new_ref)


def test_read_only_and_missing_table(database: tuple[str, str]) -> None:
    url, table = database
    with pytest.raises(UnsupportedOperation, match="read-only"):
        connector(url, table, writable=False).delete("emma@agency.example", ItemRef("emma@agency.example", "1"))
    with pytest.raises(NotFoundError, match="no table"):
        connector(url, "nope_" + table).calendars()


def test_naive_times_round_trip_in_platform_zone(database: tuple[str, str]) -> None:
    c = connector(*database)
    start = datetime(2026, 12, 4, 8, tzinfo=UTC)  # 09:00 in Paris
    ref = c.put("farid@agency.example", CalendarItem("t@x", [Event("t@x", start, start + timedelta(hours=1))]))
    (item,) = [i for i in c.items("farid@agency.example")[0] if i.ref and i.ref.id == ref.id]
    assert item.master and item.master.span_utc()[0] == start

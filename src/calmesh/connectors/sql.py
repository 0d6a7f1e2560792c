"""An in-house system's database table as a calendar platform (kind ``sql``).

Many in-house tools (project planners, room bookers, rota systems) keep meetings as rows. Rather
than asking their owners to write a plugin, this connector maps columns onto events by name:

    [platforms.projects]
    kind = "sql"
    url = "postgresql+psycopg://calmesh@db.internal/projects"
    password_env = "PROJECTS_DB_PASSWORD"
    table = "meetings"
    columns = { id = "id", calendar = "owner_email", start = "starts_at", end = "ends_at", title = "name" }

A calendar is one value of the ``calendar`` column (usually a person's email). Naive timestamps are
read in the platform's ``timezone``. Change detection hashes (id, updated-or-row) pairs, so it works
on tables without an ``updated`` column; writes are guarded by a per-row hash as ETag.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import NoSuchTableError, OperationalError, SQLAlchemyError

from calmesh.connectors.base import (
    AuthenticationError,
    Capabilities,
    Connector,
    ConnectorSettings,
    InvalidDataError,
    NotFoundError,
    PreconditionFailed,
    TransientError,
    UnsupportedOperation,
)
from calmesh.connectors.settings import SQLSettings
from calmesh.model import (
    MARKER_PROPERTY,
    BusyType,
    CalendarInfo,
    CalendarItem,
    ChangeSet,
    Event,
    EventStatus,
    ItemRef,
    Problem,
    ProblemCode,
    Window,
    as_utc,
)
from calmesh.timezones import zoneinfo

_DAY = timedelta(days=1)
_SHOW_AS = {"free": BusyType.FREE, "tentative": BusyType.BUSY_TENTATIVE, "busy": BusyType.BUSY,
            "oof": BusyType.BUSY_UNAVAILABLE, "away": BusyType.BUSY_UNAVAILABLE}
_SHOW_AS_OUT = {v: k for k, v in _SHOW_AS.items() if k != "away"}


class SQLConnector(Connector):
    kind: ClassVar[str] = "sql"
    Settings: ClassVar[type[ConnectorSettings]] = SQLSettings
    capabilities: ClassVar[Capabilities] = Capabilities(write=True, changes=True, people=False, answers=False, sequence=False)


    @property
    def keeps_uids(self) -> bool:
        return bool(self.cols.uid)  # without a UID column, the UID is made from the row id
    def __init__(self, name: str, settings: ConnectorSettings) -> None:
        super().__init__(name, settings)
        assert isinstance(settings, SQLSettings)
        self.cfg = settings
        self.cols = settings.columns
        self._zone = zoneinfo(settings.timezone)
        self._engine: sa.Engine | None = None
        self._table: sa.Table | None = None

    # ------------------------------------------------------------------ plumbing
    def _url(self) -> URL:
        url = make_url(self.cfg.url)
        password = self.cfg.password(self.name)
        if password is not None:
            url = url.set(password=password)
        if url.get_backend_name() == "sqlite" and url.database and not url.database.startswith("/") \
                and url.database != ":memory:" and self.cfg.base_dir:
            url = url.set(database=f"{self.cfg.base_dir}/{url.database}")
        return url

    def _tbl(self) -> sa.Table:
        if self._table is None:
            try:
                self._engine = sa.create_engine(self._url(), pool_pre_ping=True)
                self._table = sa.Table(self.cfg.table, sa.MetaData(), autoload_with=self._engine)
            except NoSuchTableError:
                raise NotFoundError(self.name, f"no table {self.cfg.table!r}") from None
            except OperationalError as exc:
                raise self._operational(exc) from exc
            missing = [c for c in self.cols.model_dump().values() if c and c not in self._table.c]
            if missing:
                raise NotFoundError(self.name, f"table {self.cfg.table!r} has no column(s) {', '.join(missing)}")
        return self._table

    def _operational(self, exc: OperationalError) -> Exception:
        text = str(exc.orig) if exc.orig else str(exc)
        if "authentication" in text.lower() or "password" in text.lower() or "access denied" in text.lower():
            return AuthenticationError(self.name, f"database refused the login: {text.splitlines()[0]}")
        return TransientError(self.name, f"database unreachable: {text.splitlines()[0]}")

    def _run(self, statement: Any, *, write: bool = False) -> list[Any]:
        table = self._tbl()
        assert self._engine is not None
        try:
            with (self._engine.begin() if write else self._engine.connect()) as conn:
                result = conn.execute(statement)
                return list(result.mappings()) if result.returns_rows else []
        except OperationalError as exc:
            raise self._operational(exc) from exc
        except SQLAlchemyError as exc:
            raise InvalidDataError(self.name, f"query on {table.name} failed: {exc}") from exc

    def _col(self, key: str) -> sa.Column[Any]:
        return self._tbl().c[getattr(self.cols, key)]

    # ------------------------------------------------------------------ rows <-> events
    def _time(self, value: Any) -> datetime | date:
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=self._zone)
        if isinstance(value, date):
            return value
        raise ValueError(f"{value!r} is not a date or time")

    def _event(self, row: Any) -> Event:
        c = self.cols
        status = str(row[c.status]).lower() if c.status and row[c.status] is not None else ""
        show_as = str(row[c.show_as]).lower() if c.show_as and row[c.show_as] is not None else None
        extra = {MARKER_PROPERTY: row[c.marker]} if c.marker and row[c.marker] else {}
        return Event(
            uid=str(row[c.uid]) if c.uid and row[c.uid] else f"{row[c.id]}@{self.name}",
            start=self._time(row[c.start]),
            end=self._time(row[c.end]),
            summary=row[c.title] if c.title else None,
            description=row[c.description] if c.description else None,
            location=row[c.location] if c.location else None,
            status=(EventStatus.CANCELLED if status in ("cancelled", "canceled")
                    else EventStatus.TENTATIVE if status == "tentative" else EventStatus.CONFIRMED),
            busy_type=_SHOW_AS.get(show_as) if show_as else None,
            last_modified=self._time(row[c.updated]) if c.updated and row[c.updated] else None,  # type: ignore[arg-type]
            extra=extra,
        )

    def _etag(self, row: Any) -> str:
        payload = json.dumps({k: str(v) for k, v in dict(row).items()}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:32]

    def _values(self, calendar: str, event: Event) -> dict[str, Any]:
        c = self.cols
        values: dict[str, Any] = {c.calendar: calendar, c.start: self._store_time(event.start),
                                  c.end: self._store_time(event.effective_end())}
        for key, value in (("title", event.summary), ("description", event.description),
                           ("location", event.location), ("uid", event.uid),
                           ("marker", event.extra.get(MARKER_PROPERTY))):
            if getattr(c, key):
                values[getattr(c, key)] = value
        if c.status:
            values[c.status] = event.status.value.lower()
        if c.show_as:
            values[c.show_as] = _SHOW_AS_OUT.get(event.effective_busy_type(), "busy")
        if c.updated:
            values[c.updated] = self._store_time(datetime.now(UTC))
        return values

    def _store_time(self, value: datetime | date) -> Any:
        column_type = self._col("start").type
        if isinstance(value, datetime):
            aware = as_utc(value, self._zone).astimezone(self._zone)
            timezone = getattr(column_type, "timezone", False)
            return aware if timezone else aware.replace(tzinfo=None)
        return value

    # ------------------------------------------------------------------ reading
    def calendars(self) -> list[CalendarInfo]:
        rows = self._run(sa.select(self._col("calendar")).distinct())
        key = self.cols.calendar
        return [CalendarInfo(str(r[key]), str(r[key]), self.name, owner=str(r[key]).lower() if "@" in str(r[key]) else None,
                             read_only=not self.cfg.writable) for r in rows]

    def calendars_of(self, email: str) -> list[str]:
        return [email]  # a person's rows are those whose calendar column holds their address

    def _rows(self, calendar: str, window: Window | None = None) -> list[Any]:
        query = sa.select(self._tbl()).where(self._col("calendar") == calendar)
        if window is not None:  # a day of slack each side for naive/all-day values, filtered after
            lo = window.start.astimezone(self._zone).replace(tzinfo=None)
            hi = window.end.astimezone(self._zone).replace(tzinfo=None)
            query = query.where(self._col("start") < hi + _DAY, self._col("end") > lo - _DAY)
        return self._run(query.order_by(self._col("start")))

    def events(self, calendar: str, window: Window) -> tuple[list[Event], list[Problem]]:
        events, problems = [], []
        for row in self._rows(calendar, window):
            try:
                event = self._event(row)
            except (ValueError, TypeError) as exc:
                problems.append(Problem(self.name, str(exc), f"row {row[self.cols.id]}", code=ProblemCode.UNREADABLE))
                continue
            start, end = event.span_utc(self._zone)
            if window.overlaps(start, end):
                events.append(event)
        return events, problems

    def items(self, calendar: str, window: Window | None = None) -> tuple[list[CalendarItem], list[Problem]]:
        items, problems = [], []
        for row in self._rows(calendar, window):
            try:
                event = self._event(row)
            except (ValueError, TypeError) as exc:
                problems.append(Problem(self.name, str(exc), f"row {row[self.cols.id]}", code=ProblemCode.UNREADABLE))
                continue
            items.append(CalendarItem(event.uid, [event], ItemRef(calendar, str(row[self.cols.id]), self._etag(row))))
        return items, problems

    def changes(self, calendar: str, token: str | None) -> ChangeSet:
        rows = self._rows(calendar)
        digest = hashlib.sha256("\n".join(f"{r[self.cols.id]}:{self._etag(r)}" for r in rows).encode()).hexdigest()
        if token == digest:
            return ChangeSet([], [], digest)
        items, _ = self.items(calendar)
        return ChangeSet(items, [], digest, complete=True)

    # ------------------------------------------------------------------ writing
    def _writable(self) -> None:
        if not self.cfg.writable:
            raise UnsupportedOperation(self.name, "this sql platform is read-only (set writable = true)")

    def _id(self, value: str) -> Any:
        """A row id as the id column's own type (ItemRef ids are text; PostgreSQL will not compare)."""
        try:
            return self._col("id").type.python_type(value)
        except (NotImplementedError, TypeError, ValueError):
            return value

    def _current(self, ref: ItemRef, if_match: str | None = None) -> Any:
        """The row behind ``ref``; with ``if_match``, only if it is still that version."""
        rows = self._run(sa.select(self._tbl()).where(self._col("id") == self._id(ref.id)))
        if not rows:
            raise NotFoundError(self.name, "no such row", item=ref.id)
        if if_match is not None and self._etag(rows[0]) != if_match:
            raise PreconditionFailed(self.name, "changed since it was read", item=ref.id)
        return rows[0]

    def put(self, calendar: str, item: CalendarItem, if_match: str | None = None) -> ItemRef:
        self._writable()
        event = item.master or item.components[0]
        if event.rrule or len(item.components) > 1:
            raise InvalidDataError(self.name, "recurring events cannot be stored in a flat table", item=item.uid)
        values = self._values(calendar, event)
        if item.ref is None:
            result = self._insert(values)
            return ItemRef(calendar, result, self._etag(self._current(ItemRef(calendar, result))))
        self._current(item.ref, if_match)
        self._run(sa.update(self._tbl()).where(self._col("id") == self._id(item.ref.id)).values(**values),
                  write=True)
        return ItemRef(calendar, item.ref.id, self._etag(self._current(item.ref)))

    def _insert(self, values: dict[str, Any]) -> str:
        table = self._tbl()
        assert self._engine is not None
        try:
            with self._engine.begin() as conn:
                result = conn.execute(sa.insert(table).values(**values))
                key = result.inserted_primary_key
        except OperationalError as exc:
            raise self._operational(exc) from exc
        except SQLAlchemyError as exc:
            raise InvalidDataError(self.name, f"insert into {table.name} failed: {exc}") from exc
        if not key or key[0] is None:
            raise InvalidDataError(self.name, f"{table.name} did not return the new row's id")
        return str(key[0])

    def delete(self, calendar: str, ref: ItemRef, if_match: str | None = None) -> None:
        self._writable()
        self._current(ref, if_match)
        self._run(sa.delete(self._tbl()).where(self._col("id") == self._id(ref.id)), write=True)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


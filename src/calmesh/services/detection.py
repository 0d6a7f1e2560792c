"""Conflicts and duplicates for people whose time lives on several platforms, and cleaning up.

Gathering: every calendar of every source of a person (home platform plus ``also``) is read for
the window, occurrences expanded, and handed to the pure :func:`calmesh.core.overlaps.analyse`,
so a double booking between Exchange and the in-house system, or the same meeting copied into
both, is found although neither platform could see it. A platform that fails is reported, never
silently taken as "no events".

Copies are never conflicts: each event is given the identity of the meeting it stands for, from
the identity record (:meth:`calmesh.store.identities.IdentityRepository.places`: booked meetings
and their invitation copies, sync groups' originals, mirror copies and busy placeholders), or,
where the record is missing, from calmesh's marker on the copy (its origin calendar, then the
event there at the same time). The pure core never reports two events of one identity as a
conflict, whatever their UIDs and titles (a placeholder has its own UID and title).

Resolution: :func:`plan_resolution` turns the core's per-occurrence proposals into whole stored
items to delete (a recurring series goes only when every one of its occurrences in the window is a
removable duplicate). :func:`apply_resolution` deletes them with If-Match, recording each item's
full content in the state store's audit log *before* deleting, so :func:`undo` can put it back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, tzinfo
from functools import partial
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from calmesh.config import Config, PersonConfig, SourceConfig
from calmesh.connectors.base import ConnectorError, NotFoundError
from calmesh.core.overlaps import (
    Conflict,
    Decision,
    DuplicateGroup,
    PlacedEvent,
    Resolution,
    analyse,
    normalize_uid,
    propose_resolution,
)
from calmesh.core.syncplan import marker_origin
from calmesh.model import MARKER_PROPERTY, CalendarItem, ItemRef, Problem, Window, shown
from calmesh.services import fanout
from calmesh.services.availability import source_events
from calmesh.services.hub import Hub
from calmesh.store.db import StoreError, open_store
from calmesh.store.repository import SyncRepository
from calmesh.timezones import zoneinfo


@dataclass(slots=True)
class PersonAnalysis:
    """One person's conflicts and duplicates, plus what could not be read."""

    email: str
    name: str | None
    conflicts: list[Conflict] = field(default_factory=list)
    duplicates: list[DuplicateGroup] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)


def gather(hub: Hub, email: str, window: Window) -> tuple[list[PlacedEvent], list[Problem], list[Problem]]:
    """Every occurrence in ``window`` from every calendar holding ``email``'s time, placed.

    Returns (events, errors, warnings): an error is a calendar or platform that could not be read
    or did not answer within the hub's ``freebusy_timeout`` (its events are missing from the
    analysis); a warning is one unreadable item. Sources are read in parallel, one thread each.
    """
    person = hub.directory.get(email)
    timeout = hub.config.hub.freebusy_timeout
    outcome = fanout.within({n: partial(_read_source, hub, person, source, window)
                             for n, source in enumerate(person.sources)}, timeout, "detection")
    placed: list[PlacedEvent] = []
    errors = [Problem(person.sources[n].platform, f"did not answer within {timeout:g}s") for n in outcome.late]
    errors += [Problem(person.sources[n].platform, f"internal error ({type(exc).__name__}, a calmesh bug)") for n, exc in outcome.failed.items()]
    warnings: list[Problem] = []
    for found, failed, problems in outcome.answered.values():  # in source order: results must be stable
        placed.extend(found)
        errors.extend(failed)
        warnings.extend(problems)
    return placed, errors, warnings


Places = dict[tuple[str, str, str], str]


def recorded_places(hub: Hub) -> tuple[Places, list[Problem]]:
    """Every recorded item's identity (``IdentityRepository.places``), read once per analysis; a
    store that cannot be read leaves the markers to go by, with a warning."""
    try:
        return hub.identities().places(), []
    except (StoreError, SQLAlchemyError) as exc:
        return {}, [Problem("state", f"the identity record cannot be read ({exc}); copies are recognised "
                                     "by their markers only")]


def with_identities(placed: Sequence[PlacedEvent], places: Places, zone: tzinfo) -> list[PlacedEvent]:
    """``placed`` with :attr:`PlacedEvent.identity` set wherever an event is a copy calmesh made
    (or the original of one): from the identity record first, else from the copy's marker."""
    keys = [places.get((p.platform, p.calendar, p.event.uid)) for p in placed]
    calendars = {f"{p.platform}/{p.calendar}" for p in placed}
    originals: dict[tuple[str, datetime, datetime], list[int]] = {}
    for n, p in enumerate(placed):
        originals.setdefault((f"{p.platform}/{p.calendar}", *p.event.span_utc(zone)), []).append(n)
    for n, p in enumerate(placed):
        marker = p.event.extra.get(MARKER_PROPERTY)
        if keys[n] is not None or marker is None:
            continue
        origin = marker_origin(marker, calendars)
        twins = [t for t in originals.get((origin, *p.event.span_utc(zone)), []) if t != n] if origin else []
        # the original: at the same time in the calendar the marker names, unmarked if any is
        twins = [t for t in twins if MARKER_PROPERTY not in placed[t].event.extra] or twins
        if len(twins) == 1:
            keys[n] = keys[twins[0]] = keys[twins[0]] or marker
    return [replace(p, identity=key) if key else p for p, key in zip(placed, keys, strict=True)]


def _read_source(hub: Hub, person: PersonConfig, source: SourceConfig, window: Window
                 ) -> tuple[list[PlacedEvent], list[Problem], list[Problem]]:
    try:
        connector = hub.connector(source.platform)
    except ConnectorError as exc:
        return [], [exc.problem()], []
    found, errors, warnings = source_events(connector, person, source, window)
    placed = [PlacedEvent(e, source.platform, calendar, ref=e.uid, owner=person.email)
              for calendar, events in found for e in events]
    return placed, errors, warnings


def analyse_people(hub: Hub, emails: Sequence[str], window: Window) -> list[PersonAnalysis]:
    """Conflicts and duplicates of each person, in the order asked."""
    out = []
    places, problems = recorded_places(hub)
    for email in emails:
        person = hub.directory.get(email)
        placed, errors, warnings = gather(hub, person.email, window)
        zone = zoneinfo(hub.directory.zone_of(person.email))
        warnings = problems + warnings
        result = analyse(with_identities(placed, places, zone), owner=person.email, default_tz=zone)
        out.append(PersonAnalysis(person.email, person.name, result.conflicts, result.duplicates, errors, warnings))
    return out


def home_platforms(hub: Hub) -> dict[str, str]:
    """email -> home platform for everyone in the directory: where an organizer's copy lives."""
    return {p.email: p.platform for p in hub.directory}


# ------------------------------------------------------------------------------------ resolution
@dataclass(frozen=True, slots=True)
class Removal:
    """One stored item proposed for deletion, with the decisions (one per occurrence) behind it."""

    owner: str
    platform: str
    calendar: str
    uid: str
    decisions: tuple[Decision, ...]

    @property
    def reason(self) -> str:
        return self.decisions[0].reason


@dataclass(slots=True)
class ResolutionPlan:
    resolutions: list[Resolution]
    removals: list[Removal]
    kept_series: list[str] = field(default_factory=list)
    """Series left alone because only some of their occurrences are duplicates (why, per UID)."""


def plan_resolution(hub: Hub, analyses: Sequence[PersonAnalysis], window: Window) -> ResolutionPlan:
    """Which whole items to delete, from the core's proposals, for the people analysed."""
    homes = home_platforms(hub)
    resolutions: list[Resolution] = []
    proposed: dict[tuple[str, str, str, str], list[Decision]] = {}
    for analysis in analyses:
        for group in analysis.duplicates:
            resolution = propose_resolution(group, home_platforms=homes)
            resolutions.append(resolution)
            for decision in resolution.removals:
                copy = decision.copy
                key = (analysis.email, copy.platform, copy.calendar, copy.event.uid)
                proposed.setdefault(key, []).append(decision)
    removals, kept = [], []
    for (owner, platform, calendar, uid), decisions in proposed.items():
        try:
            occurrences = _occurrences(hub, platform, calendar, uid, window)
        except ConnectorError as exc:
            kept.append(f"{uid} on {platform}:{calendar}: cannot check its occurrences ({exc}); kept")
            continue
        if occurrences > len(decisions):
            kept.append(f"{uid} on {platform}:{calendar}: only {len(decisions)} of its {occurrences} "
                        "occurrences in the window are duplicates; the series is kept")
            continue
        removals.append(Removal(owner, platform, calendar, uid, tuple(decisions)))
    return ResolutionPlan(resolutions, removals, kept)


def _occurrences(hub: Hub, platform: str, calendar: str, uid: str, window: Window) -> int:
    events, _ = hub.connector(platform).events(calendar, window)
    return sum(1 for e in events if e.uid == uid)


UNDO_SEARCH = 10_000
"""How many recent audit entries ``undo`` looks through to find where a deleted copy lived."""


@contextmanager
def open_audit_log(config: Config) -> Iterator[SyncRepository]:
    """The state store's repository (schema brought up to date), closed on exit."""
    sessions = open_store(config.state_url())
    try:
        yield SyncRepository(sessions)
    finally:
        bind = sessions.kw.get("bind")
        if bind is not None:
            bind.dispose()


@dataclass(frozen=True, slots=True)
class Applied:
    removal: Removal
    log_id: int | None
    error: str | None = None


def apply_resolution(hub: Hub, plan: ResolutionPlan, log: SyncRepository,
                     on_progress: Callable[[Applied], None] | None = None) -> list[Applied]:
    """Delete each planned item: read it whole, log its content, then delete with If-Match.

    Logging comes first so that a crash between the two leaves a log entry for an item that still
    exists (harmless), never a deleted item with no way back.
    """
    done = []
    for removal in plan.removals:
        try:
            item = stored_item(hub, removal.platform, removal.calendar, removal.uid)
            assert item.ref is not None
            log_id = log.audit(action="delete", platform=removal.platform, calendar=removal.calendar,
                               item_ref=item.ref.id, uid=item.uid, reason=f"duplicate resolution: {removal.reason}",
                               previous=item, etag_before=item.ref.etag)
            hub.connector(removal.platform).delete(removal.calendar, item.ref, if_match=item.ref.etag)
            result = Applied(removal, log_id)
        except ConnectorError as exc:
            result = Applied(removal, None, str(exc))
        done.append(result)
        if on_progress is not None:
            on_progress(result)
    return done


def stored_item(hub: Hub, platform: str, calendar: str, uid: str, item_id: str | None = None) -> CalendarItem:
    """The whole stored item (master and overrides, with its ref and ETag) at ``item_id`` when
    given and still there, else the one holding ``uid``: Microsoft Graph gives the events written
    through it a UID of its own, so what calmesh wrote is found by the id the write answered. On a
    platform that keeps UIDs, an item at ``item_id`` under another UID is another item that was
    given the id again (an in-house table reuses a deleted row's id): it is never taken for
    ``uid``'s, which would overwrite it."""
    connector = hub.connector(platform)
    items, _ = connector.items(calendar)
    placed = [i for i in items if i.ref is not None]
    for item in placed:
        if item_id is not None and item.ref is not None and item.ref.id == item_id and (
                not connector.keeps_uids or normalize_uid(item.uid) == normalize_uid(uid)):
            return item
    for item in placed:
        if item.uid == uid:
            return item
    raise NotFoundError(platform, f"no item with UID {uid} in {calendar}", item=uid)


def undo(hub: Hub, log: SyncRepository, log_id: int) -> ItemRef:
    """Put a copy deleted by duplicate resolution back where it was, from its audit entry, and
    log that write too. Raises LookupError/ValueError with the reason when it cannot."""
    entry = next((e for e in log.audit_log(limit=UNDO_SEARCH) if e.id == log_id), None)
    if entry is None:
        raise LookupError(f"no audit entry {log_id} among the latest {UNDO_SEARCH}")
    if entry.action != "delete" or entry.group is not None:
        raise ValueError(f"audit entry {log_id} is not a duplicate-resolution deletion ({entry.action}"
                         + (f" by sync group {entry.group})" if entry.group else ")"))
    item = log.previous_content(log_id)
    if item is None:
        raise ValueError(f"audit entry {log_id} holds no content to restore")
    restored = CalendarItem(item.uid, item.components)
    ref = hub.connector(entry.platform).put(entry.calendar, restored)
    log.audit(action="create", platform=entry.platform, calendar=entry.calendar, item_ref=ref.id, uid=item.uid,
              reason=f"undo of audit entry {log_id}", written=restored, etag_after=ref.etag)
    return ref


# ------------------------------------------------------------------------------------ JSON
def copy_json(placed: PlacedEvent, zone: tzinfo, details: bool | None = None) -> dict[str, Any]:
    """One copy as a door shows it: its title, UID and organiser only with ``details`` (the asker is
    granted the person) and never for a private event (who organises a private meeting says as
    much as its title); else its time and place only. ``details`` None: for the local operator
    (the CLI), who gets the UIDs and organisers to act on, and no private titles either."""
    event = placed.event
    start, end = event.span_utc(zone)
    named = details is None or details and not event.private
    return {"platform": placed.platform, "calendar": placed.calendar, "uid": event.uid if named else None,
            "summary": event.summary if details is not False and not event.private else None,
            "start": start.astimezone(zone).isoformat(), "end": end.astimezone(zone).isoformat(),
            "organizer": event.organizer.email if named and event.organizer else None}


def conflicts_json(analysis: PersonAnalysis, zone: tzinfo, details: bool | None = None) -> dict[str, Any]:
    """A person's conflicts as an asker may see them (``details``: see :func:`copy_json`)."""
    return {
        "email": analysis.email, "name": analysis.name,
        "conflicts": [{"start": c.start.astimezone(zone).isoformat(), "end": c.end.astimezone(zone).isoformat(),
                       "platforms": list(c.platforms), "cross_platform": c.cross_platform,
                       "events": [copy_json(c.first, zone, details), copy_json(c.second, zone, details)]}
                      for c in analysis.conflicts],
        "errors": shown(analysis.errors, details), "warnings": shown(analysis.warnings, details),
    }


def duplicates_json(analysis: PersonAnalysis, zone: tzinfo, details: bool | None = None,
                    resolutions: Sequence[Resolution] = ()) -> dict[str, Any]:
    """A person's duplicate groups; with ``resolutions``, what to keep and remove in each."""
    by_group = {id(r.group): r for r in resolutions}
    groups = []
    for group in analysis.duplicates:
        # the group's reason names each copy (its UID); the pairs' own reasons name none. Two
        # copies need no naming (``copies`` says which they are): only a larger group's reason
        # says which pair matched how, where details may be shown
        named = len(group.pairs) > 1 and (details is None or details and not any(m.event.private for m in group.members))
        reason = group.reason if named else "; ".join(dict.fromkeys(p.reason for p in group.pairs))
        entry: dict[str, Any] = {"score": group.score, "reason": reason, "platforms": list(group.platforms),
                                 "same_uid": all(p.same_uid for p in group.pairs),
                                 "copies": [copy_json(m, zone, details) for m in group.members]}
        resolution = by_group.get(id(group))
        if resolution is not None:
            entry["decisions"] = [{**copy_json(d.copy, zone, details), "remove": d.remove, "reason": d.reason}
                                  for d in resolution.decisions]
        groups.append(entry)
    return {"email": analysis.email, "name": analysis.name, "duplicates": groups,
            "errors": shown(analysis.errors, details), "warnings": shown(analysis.warnings, details)}


def removal_json(removal: Removal) -> dict[str, Any]:
    return {"owner": removal.owner, "platform": removal.platform, "calendar": removal.calendar,
            "uid": removal.uid, "reason": removal.reason}

"""Two-way sync between real CalDAV servers: one Radicale calendar kept in step with one Xandikos
calendar (both started on 127.0.0.1 by tests/conftest.py), and CalDAV out to a folder of ICS
files. Every scenario goes through the real connectors, the real engine and a SQLite state store.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from calmesh import ical
from calmesh.connectors.ics import ICSConnector, ICSSettings
from calmesh.fakes.outage import GoesDown
from calmesh.fakes.samples import PARIS, single, weekly_series
from calmesh.model import Attendee, CalendarItem, Classification

from .peers import Group, Peer, bump

if TYPE_CHECKING:
    from conftest import CalDAVServer  # tests/conftest.py, which provides the fixtures

NEW_YORK = ZoneInfo("America/New_York")
DAY = datetime(2026, 12, 1, 9, tzinfo=PARIS)
BAD_DATES = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:bad-dates@test\r\n"
             "DTSTAMP:20261101T000000Z\r\nDTSTART:20261399T250000Z\r\nDTEND:20261399T260000Z\r\n"
             "SUMMARY:Bad dates\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")


def meeting(uid: str, hour: int = 9, summary: str = "Review", day: int = 0) -> CalendarItem:
    start = DAY + timedelta(days=day, hours=hour - 9)
    return single(uid, start, start + timedelta(minutes=45), summary)


@pytest.fixture
def pair(tmp_path: Path, rad: Peer, xan: Peer) -> Group:
    return Group(tmp_path, rad, xan)


def summaries(peer: Peer) -> dict[str, str | None]:
    return {uid: peer.master(uid).summary for uid in peer.uids()}


# ------------------------------------------------------------------------- basic two-way sync
def test_create_edit_delete_both_ways(pair: Group, rad: Peer, xan: Peer) -> None:
    rad.create(meeting("from-rad@test"))
    xan.create(meeting("from-xan@test", hour=14))
    first = pair.run()
    assert (first.status, first.counts["created"]) == ("ok", 2)
    assert rad.uids() == xan.uids() == {"from-rad@test", "from-xan@test"}

    rad.edit("from-xan@test", bump(summary="edited on Radicale"))
    xan.edit("from-rad@test", bump(summary="edited on Xandikos", location="Room 4"))
    assert pair.run().counts["updated"] == 2
    assert summaries(rad) == summaries(xan) == {"from-rad@test": "edited on Xandikos",
                                                "from-xan@test": "edited on Radicale"}
    assert rad.master("from-rad@test").location == "Room 4"

    rad.delete("from-rad@test")
    xan.delete("from-xan@test")
    assert pair.run().counts["deleted"] == 2
    assert rad.uids() == xan.uids() == set()
    assert pair.run().plan.writes == []


def test_rerun_without_change_writes_nothing(pair: Group, rad: Peer, xan: Peer) -> None:
    rad.create(meeting("a@test"))
    rad.create(weekly_series("series@test"))
    xan.create(meeting("b@test", hour=11))
    pair.run()
    before = (rad.etags(), xan.etags())
    for full in (False, True):
        report = pair.run(full=full)
        assert pair.writes(report) == 0 and report.plan.writes == []
    assert (rad.etags(), xan.etags()) == before


def test_a_quiet_run_asks_each_server_one_ctag(pair: Group, rad: Peer, xan: Peer,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A no-op costs what changed: once the group is at rest, a run asks each server for its
    calendar's CTag (one PROPFIND of one property) and nothing else, whatever the calendars
    hold; an edit on either side brings back the change feed and is synced as ever."""
    from calmesh.connectors.caldav import CalDAVConnector

    rad.create(meeting("a@test"))
    xan.create(meeting("b@test", hour=11))
    pair.settle()
    pair.run()  # the copies' targets are listed in full once (see SyncEngine.run)
    asked: list[tuple[str, str]] = []
    send = CalDAVConnector._send

    streamed = CalDAVConnector._streamed

    def counted(self: CalDAVConnector, method: str, url: str, body: str = "", *args: object, **kw: object) -> object:
        asked.append((self.name, method))
        return send(self, method, url, body, *args, **kw)  # type: ignore[arg-type]

    def counted_stream(self: CalDAVConnector, method: str, *args: Any) -> Any:  # the change feed, streamed
        asked.append((self.name, method))
        return streamed(self, method, *args)
    monkeypatch.setattr(CalDAVConnector, "_send", counted)
    monkeypatch.setattr(CalDAVConnector, "_streamed", counted_stream)
    quiet = pair.run()
    assert quiet.status == "ok" and quiet.plan.writes == []
    assert sorted(asked) == sorted((p.conn.name, "PROPFIND") for p in (rad, xan))
    xan.edit("a@test", bump(summary="edited on Xandikos"))
    asked.clear()
    assert pair.run().counts["updated"] == 1 and (xan.conn.name, "REPORT") in asked
    assert summaries(rad) == summaries(xan) == {"a@test": "edited on Xandikos", "b@test": "Review"}


def test_echo_is_never_propagated_back_as_new(pair: Group, rad: Peer, xan: Peer) -> None:
    rad.create(meeting("origin@test"))
    pair.run()
    for full in (False, True, False):
        assert pair.run(full=full).plan.writes == []
    assert rad.uids() == xan.uids() == {"origin@test"}
    assert [i.uid for i in rad.items()] == ["origin@test"]  # no second copy came back
    assert pair.repo.counts("g")["items"] == 1


def test_deleting_a_copy_made_by_the_previous_run_propagates(pair: Group, rad: Peer, xan: Peer) -> None:
    """The copy was created after the change token was taken and deleted before the next feed:
    for the server that is no change at all, so the engine lists such a member in full."""
    for uid in ("fresh@test", "other@test", "third@test"):
        rad.create(meeting(uid))
    pair.run()
    xan.delete("fresh@test")
    assert pair.run().counts["deleted"] == 1
    assert rad.uids() == xan.uids() == {"other@test", "third@test"}


# ------------------------------------------------------------------------------- conflicts
class CountingFetches:
    """Wraps a CalDAV connector's multiget to count the objects it downloads (the transport,
    the servers and the engine stay real)."""

    def __init__(self, peer: Peer) -> None:
        self.fetched: list[str] = []
        conn = peer.conn
        original = conn._multiget  # type: ignore[attr-defined]

        def counted(calendar: str, hrefs: list[str]) -> object:
            self.fetched.extend(hrefs)
            return original(calendar, hrefs)
        conn._multiget = counted  # type: ignore[attr-defined]


def test_a_fresh_process_relisting_in_full_fetches_only_what_changed(
        tmp_path: Path, radicale: CalDAVServer, xandikos: CalDAVServer) -> None:
    """Cold start (a new process, so no object cache): a full comparison lists ETags and fetches
    only the objects whose ETag differs from the one on record, as vdirsyncer's status does."""
    rad = Peer("rad", radicale.connector("rad"), radicale.new_calendar())
    xan = Peer("xan", xandikos.connector("xan"), xandikos.new_calendar())
    for n in range(6):
        rad.create(meeting(f"r{n}@test", hour=9 + n))
    xan.create(weekly_series("series@test"))
    Group(tmp_path, rad, xan).settle()
    xan.edit("r1@test", bump(summary="edited on Xandikos"))

    fresh = [Peer(p.platform, server.connector(p.platform), p.calendar)
             for p, server in ((rad, radicale), (xan, xandikos))]
    counters = [CountingFetches(p) for p in fresh]
    group = Group(tmp_path, *fresh)
    report = group.run(full=True)
    assert report.full == {rad.key, xan.key}
    assert [(type(w).__name__, w.target) for w in report.plan.writes] == [("Update", rad.key)]
    assert counters[0].fetched == [rad.by_uid()["r1@test"].ref.id]  # type: ignore[union-attr]
    # ^ only the original about to be replaced (its people kept, its content audited); nothing else
    assert [xan.by_uid()["r1@test"].ref.id] == counters[1].fetched  # type: ignore[union-attr]
    entry = next(e for e in group.repo.audit_log("g") if e.action == "update")
    previous = group.repo.previous_content(entry.id)
    assert previous is not None and previous.components[0].summary == "Review"
    assert summaries(rad)["r1@test"] == "edited on Xandikos"


def test_an_event_already_on_both_servers_is_paired_not_copied(pair: Group, rad: Peer, xan: Peer) -> None:
    """The same invitation in both calendars before the first sync: copying it would hit
    CalDAV's no-uid-conflict; it is recognised by UID and kept once on each side."""
    rad.create(meeting("invite@test"))
    xan.create(meeting("invite@test"))
    rad.create(meeting("only-rad@test", hour=15))
    first = pair.run()
    assert first.status == "ok" and first.counts["created"] == 1
    assert rad.uids() == xan.uids() == {"invite@test", "only-rad@test"}
    xan.edit("invite@test", bump(summary="moved to Thursday"))
    assert pair.run().counts["updated"] == 1
    assert summaries(rad)["invite@test"] == "moved to Thursday"
    assert pair.repo.counts("g")["items"] == 2


@pytest.mark.parametrize(("policy", "expected"), [
    ("newest", {"c@test": "Xandikos, seq +2"}),
    ("rad", {"c@test": "Radicale, seq +1"}),
])
def test_simultaneous_edits_follow_the_policy(tmp_path: Path, rad: Peer, xan: Peer, policy: str,
                                              expected: dict[str, str]) -> None:
    group = Group(tmp_path, rad, xan, conflict=policy)
    rad.create(meeting("c@test"))
    group.run()
    rad.edit("c@test", bump(summary="Radicale, seq +1"))
    xan.edit("c@test", lambda e: replace(e, summary="Xandikos, seq +2", sequence=e.sequence + 2))
    report = group.run()
    assert report.counts["conflict"] == 1
    group.settle()
    assert summaries(rad) == summaries(xan) == expected


def test_simultaneous_edits_keep_both(tmp_path: Path, rad: Peer, xan: Peer) -> None:
    group = Group(tmp_path, rad, xan, conflict="keep-both")
    rad.create(meeting("c@test"))
    group.run()
    rad.edit("c@test", bump(summary="Radicale version"))
    xan.edit("c@test", bump(summary="Xandikos version"))
    group.run()
    group.settle()
    assert rad.titles() == xan.titles() == {"Radicale version", "Xandikos version"}
    assert len(rad.uids()) == len(xan.uids()) == 2


def test_edit_wins_over_a_racing_delete(pair: Group, rad: Peer, xan: Peer) -> None:
    rad.create(meeting("race@test"))
    pair.run()
    rad.edit("race@test", bump(summary="still on"))
    xan.delete("race@test")
    report = pair.run()
    assert report.counts["conflict"] == 1
    pair.settle()
    assert summaries(rad) == summaries(xan) == {"race@test": "still on"}


# ------------------------------------------------------------------------------ recurrence
def test_moved_occurrence_new_exception_and_exdate_cross_over(pair: Group, rad: Peer, xan: Peer) -> None:
    rad.create(weekly_series("series@test"))
    pair.run()
    # On Xandikos: move the 2026-10-27 occurrence to 11:00 and cancel the 2026-11-17 one.
    item = xan.by_uid()["series@test"]
    master = next(c for c in item.components if c.recurrence_id is None)
    moved_from = datetime(2026, 10, 27, 9, tzinfo=PARIS)
    override = replace(master, recurrence_id=moved_from, rrule=[], exdate=[], summary="moved to 11:00",
                       start=moved_from + timedelta(hours=2), end=moved_from + timedelta(hours=2, minutes=30))
    cancelled = datetime(2026, 11, 17, 9, tzinfo=PARIS)
    xan.put_back(item, [replace(master, exdate=[*master.exdate, cancelled], sequence=master.sequence + 1),
                        *[c for c in item.components if c.recurrence_id is not None], override])
    assert pair.run().counts["updated"] == 1
    components = rad.by_uid()["series@test"].components
    overrides = {c.recurrence_id.astimezone(UTC): c for c in components if c.recurrence_id is not None}  # type: ignore[union-attr,attr-defined]
    assert overrides[moved_from.astimezone(UTC)].summary == "moved to 11:00"
    assert overrides[moved_from.astimezone(UTC)].start == moved_from + timedelta(hours=2)
    assert datetime(2026, 11, 3, 9, tzinfo=PARIS).astimezone(UTC) in overrides  # the older exception stays
    rad_master = next(c for c in components if c.recurrence_id is None)
    assert cancelled.astimezone(UTC) in {d.astimezone(UTC) for d in rad_master.exdate}  # type: ignore[union-attr,attr-defined]
    assert pair.run().plan.writes == []


def test_time_zone_change_keeps_the_new_zone(pair: Group, rad: Peer, xan: Peer) -> None:
    rad.create(meeting("tz@test"))
    pair.run()
    ny_start = datetime(2026, 12, 1, 9, tzinfo=NEW_YORK)
    rad.edit("tz@test", bump(start=ny_start, end=ny_start + timedelta(minutes=45), tzid="America/New_York"))
    pair.run()
    copy = xan.master("tz@test")
    assert copy.start == ny_start and copy.start.astimezone(UTC) == datetime(2026, 12, 1, 14, tzinfo=UTC)  # type: ignore[union-attr,attr-defined]
    assert copy.tzid == "America/New_York"
    assert pair.run().plan.writes == []


# ------------------------------------------------------------------------------- busy mode
def test_busy_block_copies_carry_only_times(tmp_path: Path, rad: Peer, xan: Peer) -> None:
    group = Group(tmp_path, rad, xan, mode="busy", busy_title="Blocked (agency)")
    secret = meeting("secret@test", summary="Acquisition of Contoso")
    secret.components[0] = replace(secret.components[0], description="price: 4M", location="CEO office",
                                   unmodelled=("X-ALT-DESC;FMTTYPE=text/html:<p>Contoso</p>",
                                               "CATEGORIES:Contoso deal"),
                                   organizer=Attendee("ceo@agency.test"),
                                   attendees=[Attendee("cfo@agency.test", "Chief Financial")])
    rad.create(secret)
    xan.create(meeting("dentist@test", hour=15, summary="Dentist"))
    group.run()
    on_xan = [c for i in xan.items() if i.uid != "dentist@test" for c in i.components]
    assert [(c.summary, c.classification, c.start) for c in on_xan] == [
        ("Blocked (agency)", Classification.PRIVATE, DAY)]
    copy = on_xan[0]
    assert (copy.description, copy.location, copy.organizer, copy.attendees) == (None, None, None, [])
    leaked = [i for i in xan.items() if b"Contoso" in repr(i).encode() or b"4M" in repr(i).encode()]
    assert leaked == []
    [placeholder] = [i for i in xan.items() if i.uid != "dentist@test"]  # nor where it comes from
    assert placeholder.marker and placeholder.marker.startswith("calmesh-busy:")
    assert "secret" not in placeholder.marker and rad.calendar not in placeholder.marker
    on_rad = [i for i in rad.items() if i.uid != "secret@test"]
    assert [i.components[0].summary for i in on_rad] == ["Blocked (agency)"]  # and the other way
    assert group.run().plan.writes == []


def test_properties_calmesh_has_no_field_for_travel_with_the_event(pair: Group, rad: Peer, xan: Peer) -> None:
    """Categories, a link, an attachment, a client's X- properties: copied with the event, and
    kept on the original when an edit comes back from the copy (they were dropped both ways)."""
    lines = ("CATEGORIES:Client,Q4\\, draft", "URL:https://intranet.test/x?y=1",
             "ATTACH;ENCODING=BASE64;FMTTYPE=text/plain;VALUE=BINARY:aGVsbG8=", "X-MOZ-GENERATION:2")
    item = meeting("rich@test")
    item.components[0] = replace(item.components[0], unmodelled=lines)
    rad.create(item)
    pair.run()
    assert set(xan.master("rich@test").unmodelled) == set(lines)
    xan.edit("rich@test", bump(summary="edited on Xandikos"))
    assert pair.run().counts["updated"] == 1
    back = rad.master("rich@test")
    assert (back.summary, set(back.unmodelled)) == ("edited on Xandikos", set(lines))
    assert pair.run().plan.writes == []


# ------------------------------------------------------------------------------ the guard
def test_empty_or_refusing_source_never_wipes_the_target(pair: Group, rad: Peer, xan: Peer,
                                                        radicale: CalDAVServer,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    for n in range(6):
        rad.create(meeting(f"g{n}@test", hour=8 + n))
    pair.run()
    real = pair.connectors["rad"]
    monkeypatch.setenv("CALMESH_TEST_WRONG_PASSWORD", "not-the-password")
    pair.connectors["rad"] = radicale.connector("rad", password_env="CALMESH_TEST_WRONG_PASSWORD")
    refused = pair.run(full=True)  # Radicale answers 401: the member cannot be read
    assert refused.status == "partial" and refused.plan.writes == [] and len(xan.uids()) == 6
    assert any(rad.key in e for e in refused.errors)
    pair.connectors["rad"] = real
    for uid in list(rad.uids()):
        rad.delete(uid)
    by_feed = pair.run()  # six deletions reported by the change feed: over the share, held
    assert by_feed.counts["deleted"] == 0 and any("held until confirmed" in n for n in by_feed.notices)
    listed = pair.run(full=True)  # an empty full listing: taken as unreachable
    assert listed.counts["deleted"] == 0 and any("listed no items" in n for n in listed.notices)
    assert len(xan.uids()) == 6
    assert pair.run(confirm_deletes=True).counts["deleted"] == 6 and xan.uids() == set()


def test_while_a_member_is_down_the_others_cost_what_changed(pair: Group, rad: Peer, xan: Peer) -> None:
    """Xandikos goes down while calmesh writes to it: an edit, a new event and a deletion made on
    Radicale are left half-done (their records dirty). Until it is back, each run reads Radicale's
    change feed and the few items left half-done by their hrefs, not Radicale's whole calendar
    (before: a full listing of every other member on every run, for hours); an edit and a
    deletion made meanwhile are still decided, and once Xandikos is back it holds the latest of
    everything, each event once."""
    for n in range(30):
        rad.create(meeting(f"o{n}@test", hour=8 + n % 10, day=n // 10))
    pair.settle()
    assert len(xan.uids()) == 30 and pair.run().full == set()
    rad.edit("o1@test", bump(summary="Moved review"))
    rad.create(meeting("new@test", hour=18))
    rad.delete("o2@test")
    outage = GoesDown(xan.conn)
    pair.connectors["xan"] = outage  # type: ignore[assignment]
    failed = pair.run()
    assert failed.status == "partial" and failed.counts["failed"] >= 1 and outage.down
    rad.edit("o1@test", bump(summary="Moved again"))  # edited again during the outage
    rad.delete("o3@test")
    for _ in range(3):
        during = pair.run()
        assert during.status == "partial" and any(xan.key in e for e in during.errors)
        assert during.full == set(), "a member's outage made the others be listed in full"
        assert len(during.read) <= 4, sorted(during.read)  # the half-done items, not 30
    pair.connectors["xan"] = xan.conn  # back up
    pair.settle()
    assert summaries(xan) == summaries(rad) and len(xan.uids()) == 29
    assert xan.master("o1@test").summary == "Moved again" and "new@test" in xan.uids()
    assert not {"o2@test", "o3@test"} & xan.uids()


def test_an_event_put_back_where_its_user_deleted_it_is_synced_again(pair: Group, rad: Peer, xan: Peer,
                                                                    radicale: CalDAVServer,
                                                                    xandikos: CalDAVServer) -> None:
    """A user deletes an event on Radicale, the deletion reaches Xandikos, then the user takes it
    back out of the trash: the very bytes at the very href, as Nextcloud's trash bin restores an
    object (a plain PUT here: Radicale keeps no trash). That is the user's own doing, so the event
    is live again and copied to Xandikos anew. Through the SQLite store, which must keep who
    deleted each copy from one run to the next. Before, the restored event matched the tombstone
    and was deleted a second time. The copy calmesh deleted on Xandikos, pushed back there
    afterwards by an offline client, is still removed."""
    for uid in ("kept@test", "other@test", "third@test"):
        rad.create(meeting(uid))
    pair.settle()
    href = rad.by_uid()["kept@test"].ref.id  # type: ignore[union-attr]
    auth = (radicale.username, radicale.password)
    url = str(httpx.URL(rad.calendar).join(href))
    stored = httpx.get(url, auth=auth, timeout=30)
    xan_auth = (xandikos.username, xandikos.password)
    stale = httpx.get(str(httpx.URL(xan.calendar).join(xan.by_uid()["kept@test"].ref.id)),  # type: ignore[union-attr]
                      auth=xan_auth, timeout=30)
    assert stored.status_code == stale.status_code == 200
    rad.delete("kept@test")
    assert pair.run().counts["deleted"] == 1 and "kept@test" not in xan.uids()

    restored = httpx.put(url, content=stored.content, auth=auth, timeout=30,
                         headers={"Content-Type": "text/calendar; charset=utf-8"})
    assert restored.status_code in (201, 204)
    back = pair.run()
    assert (back.status, back.counts["created"], back.counts["deleted"]) == ("ok", 1, 0)
    assert rad.uids() == xan.uids() == {"kept@test", "other@test", "third@test"}
    assert pair.run().plan.writes == []

    xan.delete("kept@test")
    assert pair.run().counts["deleted"] == 1 and rad.uids() == {"other@test", "third@test"}
    pushed = httpx.put(xan.calendar + "stale-copy.ics", content=stale.content, auth=xan_auth, timeout=30,
                       headers={"Content-Type": "text/calendar; charset=utf-8"})
    assert pushed.status_code in (201, 204)
    again = pair.run()
    assert (again.counts["created"], again.counts["deleted"]) == (0, 1)
    assert rad.uids() == xan.uids() == {"other@test", "third@test"}


def test_a_deletion_is_remembered_for_keep_deletions_then_forgotten(tmp_path: Path, rad: Peer, xan: Peer,
                                                                     xandikos: CalDAVServer) -> None:
    """A deleted event is remembered for ``keep_deletions`` after its last copy went: within it, a
    stale copy pushed back (an offline client) is deleted again, and that renews the record; once
    it has passed, a run that reads the state forgets it, so the state grows with the recent
    deletions, not with every deletion ever made. calmesh's copy turning up after that is still
    removed: its marker names an original that is gone. (The state store's clock is moved; the
    servers are real.)"""
    now = [datetime.now(UTC)]
    pair = Group(tmp_path, rad, xan, clock=lambda: now[0], keep_deletions="30d")
    for uid in ("gone@test", "other@test", "third@test"):
        rad.create(meeting(uid))
    pair.settle()
    auth = (xandikos.username, xandikos.password)
    stale = httpx.get(str(httpx.URL(xan.calendar).join(xan.by_uid()["gone@test"].ref.id)),  # type: ignore[union-attr]
                      auth=auth, timeout=30).content
    rad.delete("gone@test")
    assert pair.run().counts["deleted"] == 1 and pair.repo.counts("g")["tombstones"] == 1

    def push_stale() -> None:
        pushed = httpx.put(xan.calendar + "stale-copy.ics", content=stale, auth=auth, timeout=30,
                           headers={"Content-Type": "text/calendar; charset=utf-8"})
        assert pushed.status_code in (201, 204)

    now[0] += timedelta(days=29)
    push_stale()
    assert pair.run().counts["deleted"] == 1 and pair.repo.counts("g")["tombstones"] == 1
    now[0] += timedelta(days=29)
    pair.run(full=True)
    assert pair.repo.counts("g")["tombstones"] == 1  # 29 days since the stale copy was deleted
    now[0] += timedelta(days=2)
    assert pair.run(full=True).plan.writes == [] and pair.repo.counts("g")["tombstones"] == 0
    assert rad.uids() == xan.uids() == {"other@test", "third@test"}
    push_stale()  # calmesh's copy still names its original by its marker, and that is gone
    assert [(type(w).__name__, w.reason) for w in pair.run().plan.writes] == [
        ("Delete", "copy of an item deleted at its origin")]
    assert rad.uids() == xan.uids() == {"other@test", "third@test"}


def test_bulk_delete_over_the_share_waits_for_confirmation(pair: Group, rad: Peer, xan: Peer) -> None:
    for n in range(8):
        xan.create(meeting(f"d{n}@test", hour=8 + n))
    pair.run()
    for n in range(5):
        xan.delete(f"d{n}@test")
    held = pair.run()
    assert held.counts["deleted"] == 0 and any("held until confirmed" in n for n in held.notices)
    assert len(rad.uids()) == 8
    assert pair.run().counts["deleted"] == 0  # still held on the next (unconfirmed) run
    assert pair.run(confirm_deletes=True).counts["deleted"] == 5
    assert rad.uids() == xan.uids() == {f"d{n}@test" for n in range(5, 8)}


# ------------------------------------------------------------------------------ quarantine
def test_unreadable_item_is_quarantined_while_the_rest_syncs(pair: Group, rad: Peer, xan: Peer,
                                                             xandikos: CalDAVServer) -> None:
    xan.create(meeting("fine@test"))
    response = httpx.put(xan.calendar + "bad-dates.ics", content=BAD_DATES.encode(),
                         headers={"Content-Type": "text/calendar; charset=utf-8"},
                         auth=(xandikos.username, xandikos.password), timeout=30)
    assert response.status_code in (201, 204)
    report = pair.run()
    assert report.status == "ok" and report.counts["created"] == 1 and report.counts["quarantined"] == 1
    assert rad.uids() == {"fine@test"}
    [entry] = pair.repo.quarantined("g")
    assert entry.member == xan.key and entry.item_ref is not None and entry.item_ref.endswith("bad-dates.ics")
    xan.create(meeting("later@test", hour=12))
    assert pair.run().counts["created"] == 1 and rad.uids() == {"fine@test", "later@test"}
    assert len(pair.repo.quarantined("g")) == 1


# --------------------------------------------------------------------------------- volume
@pytest.mark.slow
@pytest.mark.timeout(900)  # 1000 PUTs into Radicale, which rewrites its index on each: ~4 min on a loaded CI core
def test_initial_sync_of_1000_events(tmp_path: Path, rad: Peer) -> None:
    """An in-house export of 1000 events (one ICS file, written at once) meets an empty Radicale
    calendar; then a re-run writes nothing on either side."""
    folder = tmp_path / "export"
    folder.mkdir()
    items = [meeting(f"bulk-{n:04d}@test", hour=8 + n % 10, day=n // 10) for n in range(1000)]
    (folder / "all.ics").write_bytes(ical.to_calendar(items).to_ical())
    ics = Peer("files", ICSConnector("files", ICSSettings(kind="ics", path=str(folder))), "all.ics")
    group = Group(tmp_path, ics, rad)
    first = group.run()
    assert (first.status, first.counts["created"]) == ("ok", 1000)
    assert len(rad.uids()) == 1000
    before = (rad.etags(), (folder / "all.ics").read_bytes())
    for full in (False, True):
        assert group.run(full=full).plan.writes == []
    assert (rad.etags(), (folder / "all.ics").read_bytes()) == before


# ------------------------------------------------------------------------------ CalDAV -> ICS
def test_caldav_out_to_an_ics_folder(tmp_path: Path, rad: Peer) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "team.ics").write_bytes(b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nEND:VCALENDAR\r\n")
    ics = Peer("files", ICSConnector("files", ICSSettings(kind="ics", path=str(folder))), "team.ics", "in")
    group = Group(tmp_path, replace(rad, direction="out"), ics)
    rad.create(meeting("one@test"))
    rad.create(weekly_series("series@test"))
    assert group.run().counts["created"] == 2
    assert ics.uids() == {"one@test", "series@test"}
    rad.edit("one@test", bump(summary="renamed"))
    rad.delete("series@test")
    report = group.run()
    assert (report.counts["updated"], report.counts["deleted"]) == (1, 1)
    assert summaries(ics) == {"one@test": "renamed"}
    ics.edit("one@test", bump(summary="local scribble"))  # the ICS side is "in": restored, not sent
    ics.create(meeting("local-only@test"))
    group.run()
    assert summaries(rad) == {"one@test": "renamed"}
    assert summaries(ics)["one@test"] == "renamed"
    assert group.run().plan.writes == []


def test_parallel_writes_keep_every_guarantee(tmp_path: Path, rad: Peer, xan: Peer) -> None:
    """``[hub] sync_write_workers``: four writers at once on both real servers, both directions,
    series included; afterwards no duplicate, both sides equal, and a re-run writes nothing."""
    for n in range(40):
        rad.create(meeting(f"r{n}@test", hour=8 + n % 9, day=n % 5))
    for n in range(3):
        xan.create(weekly_series(f"series{n}@test"))
    group = Group(tmp_path, rad, xan, write_workers=4)
    first = group.run()
    assert (first.status, first.counts["created"], first.errors) == ("ok", 43, [])
    assert rad.uids() == xan.uids() and len(xan.items()) == 43  # 43 objects for 43 UIDs: no duplicate
    rad.edit("r7@test", bump(summary="edited"))
    xan.delete("r8@test")
    group.settle()
    assert summaries(rad) == summaries(xan) and "r8@test" not in rad.uids()
    assert group.writes(group.run(full=True)) == 0

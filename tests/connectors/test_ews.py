"""EWS-only connector behaviour; what EWS shares with Graph and Google is in
``test_vendor_contract.py``. Every test runs against calmesh.fakes.ews.EWSFake, a protocol-faithful
fake of Exchange Web Services (SOAP, plus an OAuth2 token endpoint) served by uvicorn on 127.0.0.1
and driven through exchangelib's real client code: no Exchange server is reachable from the test
machines."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from calmesh.connectors.base import FreeBusyRequest
from calmesh.connectors.ews import EWSConnector
from calmesh.fakes.ews import EWSFake
from calmesh.fakes.samples import NEW_YORK, PARIS, single, weekly_series
from calmesh.model import (
    BusyType,
    CalendarItem,
    Classification,
    Event,
    EventStatus,
    Window,
    WorkingHours,
)

from .vendors import ALICE, BOB, CAROL

VENDOR = "ews"


def _utc_offset(hours: WorkingHours, when: datetime) -> timedelta | None:
    return when.astimezone(hours.zone).utcoffset()


def test_freebusy_statuses_and_working_hours(fake: EWSFake, conn: EWSConnector) -> None:
    """Against the EWS fake: GetUserAvailability names every mailbox in one request; OOF stays
    BUSY_UNAVAILABLE, WorkingElsewhere does not block, and working hours come with a bias-and-rules
    zone that has the right offsets on both sides of the DST change."""
    fake.add_item(BOB, single("b1", datetime(2026, 11, 2, 9, tzinfo=NEW_YORK), datetime(2026, 11, 2, 10, tzinfo=NEW_YORK),
                              busy_type=BusyType.BUSY_UNAVAILABLE))
    fake.add_item(CAROL, single("c1", datetime(2026, 11, 2, 12, tzinfo=PARIS), datetime(2026, 11, 2, 13, tzinfo=PARIS)),
                  status="WorkingElsewhere")
    window = Window(datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 3, tzinfo=UTC))
    people = [FreeBusyRequest(ALICE), FreeBusyRequest(BOB), FreeBusyRequest("ghost@sales.test"), FreeBusyRequest(CAROL)]
    alice, bob, _ghost, carol = conn.freebusy(people, window)
    assert fake.availability_calls == [[ALICE, BOB, "ghost@sales.test", CAROL]]
    assert [(p.start, p.type) for p in bob.busy] == [(datetime(2026, 11, 2, 14, tzinfo=UTC), BusyType.BUSY_UNAVAILABLE)]
    assert carol.busy == [] and carol.complete  # WorkingElsewhere does not block
    assert alice.working_hours is not None and bob.working_hours is not None
    period = alice.working_hours.periods[0]
    assert (period.days, period.start, period.end) == (frozenset(range(5)), time(9), time(17))
    for when in (datetime(2026, 7, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)):
        assert _utc_offset(alice.working_hours, when) == when.astimezone(PARIS).utcoffset()
        assert _utc_offset(bob.working_hours, when) == when.astimezone(NEW_YORK).utcoffset()


def test_availability_views_read_from_the_xml_match_exchangelibs_own(fake: EWSFake, conn: EWSConnector,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """calmesh reads each mailbox's FreeBusyView straight from the GetUserAvailability XML instead
    of building exchangelib's models (a cold answer's cost): for the same answer of the fake, it
    must hold what exchangelib's own ``FreeBusyView`` holds: every event's times, busy type
    (Busy, Tentative, OOF, WorkingElsewhere), privacy, subject and location, the merged digits,
    the working periods and their zone, and the same error for a mailbox Exchange cannot resolve."""
    from exchangelib.properties import FreeBusyView
    from exchangelib.services import GetUserAvailability

    from calmesh.connectors import ews

    day = datetime(2026, 11, 3, tzinfo=PARIS)
    fake.add_item(ALICE, weekly_series())
    fake.add_item(ALICE, single("a1", day.replace(hour=14), day.replace(hour=15), status=EventStatus.TENTATIVE))
    fake.add_item(ALICE, CalendarItem("a2", [Event("a2", day.replace(hour=16), day.replace(hour=17), "Doctor",
                                                   location="Clinic", classification=Classification.PRIVATE,
                                                   tzid="Europe/Paris")]))
    fake.add_item(BOB, single("b1", datetime(2026, 11, 2, 9, tzinfo=NEW_YORK), datetime(2026, 11, 2, 10, tzinfo=NEW_YORK),
                              busy_type=BusyType.BUSY_UNAVAILABLE))
    fake.add_item(CAROL, single("c1", day.replace(hour=12), day.replace(hour=13)), status="WorkingElsewhere")
    window = Window(datetime(2026, 10, 26, tzinfo=UTC), datetime(2026, 11, 9, tzinfo=UTC))
    emails = [ALICE, "ghost@sales.test", BOB, CAROL]

    seen: list[FreeBusyView | Exception] = []
    ours_class = ews._Availability

    class Both(ours_class):  # type: ignore[misc,valid-type]
        """The request made once as calmesh makes it, the answer read by both: exchangelib's
        own service class (its FreeBusyView models) and calmesh's."""

        def call(self, **kwargs: Any) -> list[Any]:
            seen.extend(GetUserAvailability(protocol=self.protocol).call(**kwargs))
            return list(ours_class(protocol=self.protocol).call(**kwargs))

    monkeypatch.setattr(ews, "_Availability", Both)
    ours = conn._availability(emails, window)

    assert len(seen) == len(ours) == 4
    ghost = ours[1]
    assert isinstance(ghost, Exception) and type(ghost) is type(seen[1]) and str(ghost) == str(seen[1])
    kinds = set()
    for view, theirs in zip(ours, seen, strict=True):
        if isinstance(view, Exception):
            continue
        assert isinstance(view, ews._View) and isinstance(theirs, FreeBusyView)
        assert view.merged == theirs.merged
        assert [(e.start, e.end, e.busy_type, e.private, e.subject, e.location) for e in view.events] == [
            (e.start, e.end, e.busy_type, e.details is None or bool(e.details.is_private),
             e.details and e.details.subject, e.details and e.details.location) for e in theirs.calendar_events]
        kinds |= {e.busy_type for e in view.events}
        assert view.working_periods == [(sorted(ews._weekday_numbers(p.weekdays)), p.start, p.end)
                                        for p in theirs.working_hours] != []
        zone = theirs.working_hours_timezone
        standard, daylight = zone.standard_time, zone.daylight_time
        assert view.working_zone == (-(zone.bias + standard.bias), -(zone.bias + daylight.bias),
                                     daylight.iso_month if standard.bias != daylight.bias else 0)
    assert kinds == {"Busy", "Tentative", "OOF", "WorkingElsewhere"}
    assert any(e.private and e.subject is None for e in ours[0].events)  # type: ignore[union-attr]


def test_an_availability_view_is_read_as_exchange_documents_it() -> None:
    """A FreeBusyView in the shape Microsoft documents (GetUserAvailability response,
    learn.microsoft.com "FreeBusyView"), read without exchangelib's models: times with an offset,
    with Z and without (the zone asked in, UTC); an event without details is private; an unreadable
    time drops that event only; grouped day names (Weekday) and a zone with daylight time."""
    from lxml import etree

    from calmesh.connectors.ews import _read_view, _zone_matching

    view = _read_view(etree.fromstring("""
<FreeBusyView xmlns="http://schemas.microsoft.com/exchange/services/2006/messages"
              xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">
  <t:FreeBusyViewType>DetailedMerged</t:FreeBusyViewType>
  <t:MergedFreeBusy>0220</t:MergedFreeBusy>
  <t:CalendarEventArray>
    <t:CalendarEvent><t:StartTime>2026-11-24T09:00:00</t:StartTime><t:EndTime>2026-11-24T10:00:00</t:EndTime>
      <t:BusyType>Busy</t:BusyType>
      <t:CalendarEventDetails><t:ID>A1</t:ID><t:Subject>Budget</t:Subject><t:Location>Room 4</t:Location>
        <t:IsMeeting>true</t:IsMeeting><t:IsRecurring>false</t:IsRecurring><t:IsException>false</t:IsException>
        <t:IsReminderSet>false</t:IsReminderSet><t:IsPrivate>false</t:IsPrivate></t:CalendarEventDetails>
    </t:CalendarEvent>
    <t:CalendarEvent><t:StartTime>2026-11-24T12:00:00+01:00</t:StartTime><t:EndTime>2026-11-24T12:30:00Z</t:EndTime>
      <t:BusyType>OOF</t:BusyType></t:CalendarEvent>
    <t:CalendarEvent><t:StartTime>soon</t:StartTime><t:EndTime>2026-11-24T13:00:00</t:EndTime>
      <t:BusyType>Tentative</t:BusyType></t:CalendarEvent>
  </t:CalendarEventArray>
  <t:WorkingHours>
    <t:TimeZone><t:Bias>-60</t:Bias>
      <t:StandardTime><t:Bias>0</t:Bias><t:Time>03:00:00</t:Time><t:DayOrder>5</t:DayOrder><t:Month>10</t:Month>
        <t:DayOfWeek>Sunday</t:DayOfWeek></t:StandardTime>
      <t:DaylightTime><t:Bias>-60</t:Bias><t:Time>02:00:00</t:Time><t:DayOrder>5</t:DayOrder><t:Month>3</t:Month>
        <t:DayOfWeek>Sunday</t:DayOfWeek></t:DaylightTime></t:TimeZone>
    <t:WorkingPeriodArray><t:WorkingPeriod><t:DayOfWeek>Weekday</t:DayOfWeek>
      <t:StartTimeInMinutes>480</t:StartTimeInMinutes><t:EndTimeInMinutes>1020</t:EndTimeInMinutes></t:WorkingPeriod>
    </t:WorkingPeriodArray>
  </t:WorkingHours>
</FreeBusyView>"""))
    first, second, unreadable = view.events
    assert (first.start, first.end) == (datetime(2026, 11, 24, 9, tzinfo=UTC), datetime(2026, 11, 24, 10, tzinfo=UTC))
    assert (first.subject, first.location, first.private) == ("Budget", "Room 4", False)
    assert (second.start, second.end) == (datetime(2026, 11, 24, 11, tzinfo=UTC), datetime(2026, 11, 24, 12, 30, tzinfo=UTC))
    assert second.private and second.busy_type == "OOF"
    assert unreadable.start is None and unreadable.busy_type == "Tentative"
    assert view.merged == "0220"
    assert view.working_periods == [([9], time(8), time(17))]
    assert view.working_zone == (60, 120, 3)
    zone = ZoneInfo(_zone_matching(*view.working_zone, 2026, "UTC"))
    assert [datetime(2026, m, 1, tzinfo=UTC).astimezone(zone).utcoffset() for m in (1, 7)] == [
        timedelta(hours=1), timedelta(hours=2)]


def test_a_platforms_people_are_split_between_native_and_event_asks_without_comparing_people(
        fake: EWSFake, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """People whose details the asker may see are read from their events, the others through
    GetUserAvailability, on one platform in one fan-out. The split goes by position: looking each
    (person, source) pair up in the other list compared pydantic models pairwise, 125 ms for a
    platform's 333 people; a comparison now fails the test."""
    from calmesh.config import PersonConfig, parse_config
    from calmesh.services import availability
    from calmesh.services.hub import Hub

    day = datetime(2026, 11, 3, tzinfo=PARIS)
    for mailbox in (ALICE, BOB, CAROL):
        fake.add_item(mailbox, single(f"m-{mailbox}", day.replace(hour=10), day.replace(hour=11), summary="Budget"))
    people = "".join(f'[[people]]\nemail = "{m}"\nplatform = "exchange"\ncalendars = ["{m}"]\n' for m in (ALICE, BOB, CAROL))
    text = (f'[hub]\ntimezone = "Europe/Paris"\n[platforms.exchange]\nkind = "ews"\nservice_endpoint = "{fake.ews_url}"\n'
            f'auth = "basic"\nusername = "calmesh-svc"\npassword_env = "CALMESH_TEST_EWS_PASSWORD"\n' + people)
    path = tmp_path / "calmesh.toml"
    path.write_text(text)

    def no_comparison(self: PersonConfig, other: object) -> bool:
        raise AssertionError("people compared while splitting a platform's asks")

    window = Window(datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 9, tzinfo=UTC))
    with Hub(parse_config(text, path)) as hub:
        monkeypatch.setattr(PersonConfig, "__eq__", no_comparison)
        alice, bob, carol = availability.freebusy(hub, [ALICE, BOB, CAROL], window, details_for=lambda e: e == BOB)
    assert fake.availability_calls[-1] == [ALICE, CAROL]  # Bob was read from his events
    for answer in (alice, bob, carol):
        assert answer.errors == [], answer.email
        assert [(p.start, p.end) for p in answer.busy] == [(day.replace(hour=10), day.replace(hour=11))]
        assert answer.complete
    assert [p.summary for p in bob.busy] == ["Budget"] and alice.busy[0].summary is None

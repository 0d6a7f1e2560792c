"""EWS-only connector behaviour; what EWS shares with Graph and Google is in
``test_vendor_contract.py``. Every test runs against calmesh.fakes.ews.EWSFake, a protocol-faithful
fake of Exchange Web Services (SOAP, plus an OAuth2 token endpoint) served by uvicorn on 127.0.0.1
and driven through exchangelib's real client code: no Exchange server is reachable from the test
machines."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from calmesh.connectors.base import FreeBusyRequest
from calmesh.connectors.ews import EWSConnector
from calmesh.fakes.ews import EWSFake
from calmesh.fakes.samples import NEW_YORK, PARIS, single
from calmesh.model import BusyType, Window, WorkingHours

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


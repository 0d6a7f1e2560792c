"""Graph-only connector behaviour; what Graph shares with EWS and Google is in
``test_vendor_contract.py``. Every test runs against calmesh.fakes.graph.GraphFake, a
protocol-faithful fake of Microsoft Graph v1.0 (and its OAuth2 token endpoint) served by uvicorn on
127.0.0.1: no Microsoft service is reachable from the test machines."""

from __future__ import annotations

from datetime import UTC, datetime, time

from calmesh.connectors.base import FreeBusyRequest
from calmesh.connectors.graph import GraphConnector
from calmesh.fakes.graph import GraphFake
from calmesh.fakes.samples import NEW_YORK, single
from calmesh.model import BusyType, Window, WorkingHours

from .vendors import ALICE, BOB

VENDOR = "graph"


def test_freebusy_keeps_out_of_office_and_working_hours(fake: GraphFake, conn: GraphConnector) -> None:
    """Against the Graph fake: getSchedule's ``oof`` stays BUSY_UNAVAILABLE, and each person's
    workingHours come back in their own zone."""
    fake.add_item(BOB, single("b1", datetime(2026, 11, 2, 9, tzinfo=NEW_YORK), datetime(2026, 11, 2, 10, tzinfo=NEW_YORK),
                              busy_type=BusyType.BUSY_UNAVAILABLE))
    window = Window(datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 3, tzinfo=UTC))
    alice, bob = conn.freebusy([FreeBusyRequest(ALICE), FreeBusyRequest(BOB)], window)
    assert [(p.start, p.type) for p in bob.busy] == [(datetime(2026, 11, 2, 14, tzinfo=UTC), BusyType.BUSY_UNAVAILABLE)]
    assert alice.working_hours == WorkingHours.simple("Europe/Paris", time(9), time(17))
    assert bob.working_hours is not None and bob.working_hours.timezone == "America/New_York"


def test_token_refreshed_before_expiry(fake: GraphFake, conn: GraphConnector) -> None:
    """Against the Graph fake issuing 30-second tokens: each call finds it within the refresh margin."""
    fake.token_lifetime = 30
    conn.calendars()
    conn.calendars()
    assert fake.requests.count("POST /token") == 2


def test_iana_zone_names_written_and_windows_names_read(fake: GraphFake, conn: GraphConnector) -> None:
    """Against the Graph fake: zone_names = "iana" writes IANA names; Windows names are read back."""
    conn.settings.zone_names = "iana"
    ref = conn.put(ALICE, single("z1", datetime(2026, 11, 5, 14, tzinfo=NEW_YORK), datetime(2026, 11, 5, 15, tzinfo=NEW_YORK)))
    stored = fake.mailboxes[ALICE].default.events[ref.id].data
    assert stored["start"]["timeZone"] == "America/New_York"
    seeded = fake.add_item(ALICE, single("z2", datetime(2026, 11, 6, 14, tzinfo=NEW_YORK),
                                         datetime(2026, 11, 6, 15, tzinfo=NEW_YORK)))
    assert fake.mailboxes[ALICE].default.events[seeded].data["start"]["timeZone"] == "Eastern Standard Time"
    by_id = {i.ref.id: i.components[0] for i in conn.items(ALICE)[0]}  # type: ignore[union-attr]
    assert by_id[seeded].tzid == by_id[ref.id].tzid == "America/New_York"
    assert by_id[seeded].start == datetime(2026, 11, 6, 14, tzinfo=NEW_YORK)

"""Find-time over time calmesh could not read (issue 13, item 1): never suggested for a required
attendee whose calendars calmesh holds; a guest outside the directory still ranks lower only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from calmesh.core.slots import Availability, SlotAttendee, SlotQuery, find_slots
from calmesh.model import BusyPeriod, BusyType, PersonFreeBusy, Window

DAY = Window(datetime(2026, 3, 2, 8, tzinfo=UTC), datetime(2026, 3, 2, 18, tzinfo=UTC))
NOW = datetime(2026, 3, 1, tzinfo=UTC)


def at(hour: int) -> datetime:
    return datetime(2026, 3, 2, hour, tzinfo=UTC)


def search(*attendees: SlotAttendee) -> list[datetime]:
    query = SlotQuery(attendees, timedelta(hours=1), DAY, NOW, granularity=timedelta(hours=1), max_candidates=100)
    return sorted(s.start for s in find_slots(query).suggestions)


def test_unread_time_of_a_required_attendee_is_never_suggested() -> None:
    unread = PersonFreeBusy("emma@x.org", DAY, [BusyPeriod(at(12), at(18), BusyType.UNKNOWN, "projects")],
                            platform="projects")
    assert search(SlotAttendee(unread)) == [at(h) for h in range(8, 12)]


def test_unread_time_of_an_optional_attendee_is_shown_as_unknown() -> None:
    unread = PersonFreeBusy("emma@x.org", DAY, [BusyPeriod(at(12), at(18), BusyType.UNKNOWN)], platform="projects")
    query = SlotQuery((SlotAttendee(PersonFreeBusy("ann@x.org", DAY, platform="zoho")), SlotAttendee(unread, False)),
                      timedelta(hours=1), DAY, NOW, granularity=timedelta(hours=1), max_candidates=100)
    found = {s.start: s for s in find_slots(query).suggestions}
    assert found[at(13)].attendees[1].availability is Availability.UNKNOWN and len(found) == 10


def test_a_guest_outside_the_directory_still_gets_suggestions() -> None:
    guest = PersonFreeBusy("zed@elsewhere.example", DAY, [BusyPeriod(DAY.start, DAY.end, BusyType.UNKNOWN)])
    assert len(search(SlotAttendee(guest))) == 10

"""Conflicts, duplicates and resolution proposals (calmesh.core.overlaps): pure, no servers needed.

The Exchange UID cases use the GlobalObjId examples published in [MS-ASEMAIL] 4.3, so the
normalisation is checked against Microsoft's own worked answers rather than against itself.
"""

from __future__ import annotations

import itertools
import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calmesh.core.overlaps import (
    DuplicateGroup,
    FuzzyRules,
    PlacedEvent,
    analyse,
    find_conflicts,
    find_duplicates,
    normalize_title,
    normalize_uid,
    propose_resolution,
    title_similarity,
)
from calmesh.model import MARKER_PROPERTY, Attendee, BusyType, Event, EventStatus, PartStat

OWNER = "alice@example.org"
T0 = datetime(2026, 10, 26, 9, 0, tzinfo=UTC)
PARIS, NEW_YORK, TOKYO = ZoneInfo("Europe/Paris"), ZoneInfo("America/New_York"), ZoneInfo("Asia/Tokyo")


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def event(uid: str, start: float, end: float, summary: str | None = "Meeting", **kw: object) -> Event:
    return Event(uid=uid, start=at(start), end=at(end), summary=summary, **kw)  # type: ignore[arg-type]


def placed(e: Event, platform: str = "exchange", calendar: str = "cal", **kw: object) -> PlacedEvent:
    return PlacedEvent(e, platform, calendar, **kw)  # type: ignore[arg-type]


def exchange_uid(inner: str, instance: bytes = bytes(4)) -> str:
    """An Outlook GlobalObjectId (hex, as EWS/Graph report it) wrapping a third-party UID."""
    data = b"vCal-Uid\x01\x00\x00\x00" + inner.encode() + b"\x00"
    header = bytes.fromhex("040000008200E00074C5B7101A82E008") + instance + bytes(16) + len(data).to_bytes(4, "little")
    return (header + data).hex().upper()


# ---- normalisation ---------------------------------------------------------------------------

class TestNormalizeUid:
    def test_case_whitespace_and_brackets(self) -> None:
        assert normalize_uid("  <ABC-def-123>\r\n ") == normalize_uid("abc-DEF-123") == "abc-def-123"

    def test_outlook_id_from_ms_asemail_example_1(self) -> None:
        # an OutlookID: InstanceDate zeroed, the whole blob hex-encoded
        uid = normalize_uid("BAAAAIIA4AB0xbcQGoLgCAfUCRDgQMnBJoXEAQAAAAAAAAAAEAAAAAvw7UtuTulOnjnjhns3jvM=")
        expected = ("040000008200E00074C5B7101A82E00800000000E040C9C12685C401"
                    "0000000000000000100000000BF0ED4B6E4EE94E9E39E3867B378EF3")
        assert uid == normalize_uid(expected) == expected.lower()

    def test_vcal_uid_from_ms_asemail_example_2(self) -> None:
        # a third-party UID wrapped by Exchange comes back as that UID
        b64 = ("BAAAAIIA4AB0xbcQGoLgCAAAAAAAAAAAAAAAAAAAAAAAAAAAMwAAAHZDYWwtVWlkAQAAAHs4MTQx"
               "MkQzQy0yQTI0LTRFOUQtQjIwRS0xMUY3QkJFOTI3OTl9AA==")
        assert normalize_uid(b64) == normalize_uid("{81412D3C-2A24-4E9D-B20E-11F7BBE92799}")

    def test_exchange_copy_matches_caldav_original(self) -> None:
        assert normalize_uid(exchange_uid("zoho-8f2a@zoho.com")) == normalize_uid("zoho-8f2a@zoho.com")

    def test_per_occurrence_id_matches_series(self) -> None:
        series = "040000008200E00074C5B7101A82E00800000000E040C9C12685C4010000000000000000100000000BF0ED4B6E4EE94E9E39E3867B378EF3"
        occurrence = series[:32] + "07EA0A1A" + series[40:]  # InstanceDate 2026-10-26
        assert normalize_uid(occurrence) == normalize_uid(series)

    def test_domain_suffix_dropped_only_when_unique_by_itself(self) -> None:
        assert normalize_uid("7kukuqrfedlm2f9t0vo5cr4f7g@google.com") == normalize_uid("7kukuqrfedlm2f9t0vo5cr4f7g")
        assert normalize_uid("42@host-a") != normalize_uid("42@host-b")

    def test_not_every_hex_string_is_an_outlook_id(self) -> None:
        assert normalize_uid("DEADBEEF" * 12) == ("deadbeef" * 12)


def test_normalize_title() -> None:
    assert normalize_title("RE: TR:  Réunion d'équipe !") == "reunion d equipe"
    assert normalize_title("Fwd: AW: Budget-Review 2026") == "budget review 2026"
    assert normalize_title(None) == normalize_title("") == ""
    # a prefix only counts at the start
    assert normalize_title("Quarterly re: planning") == "quarterly re planning"


def test_title_similarity() -> None:
    assert title_similarity("weekly sync", "weekly sync") == 1.0
    assert title_similarity("sync weekly", "weekly sync") == 1.0
    assert title_similarity("budget review", "budgte review") > 0.8
    assert title_similarity("budget review", "lunch") < 0.5
    assert title_similarity("", "lunch") == 0.0
    # different numbers name different events (found by the agency soak: two events "P1 budget"
    # and "P2 budget" its person made at one time were resolved as one, and one was deleted)
    assert title_similarity("p1 budget", "p2 budget") < 0.5
    assert title_similarity("sprint 41 planning", "sprint 42 planning") < 0.6
    assert title_similarity("budget review 2026", "budgte review 2026") > 0.8
    assert title_similarity("2026 budget review", "budget review 2026") == 1.0


# ---- conflicts -------------------------------------------------------------------------------

def test_cross_platform_conflict_names_platforms_and_overlap() -> None:
    a = placed(event("a", 0, 1), "exchange")
    b = placed(event("b", 0.5, 2), "zoho")
    c = placed(event("c", 1, 2), "inhouse")  # touches a at 10:00, overlaps b
    conflicts = find_conflicts([a, b, c], owner=OWNER)
    assert [(x.first, x.second) for x in conflicts] == [(a, b), (b, c)]
    assert conflicts[0].platforms == ("exchange", "zoho") and conflicts[0].cross_platform
    assert (conflicts[0].start, conflicts[0].end) == (at(0.5), at(1))


def test_non_blocking_events_are_not_conflicts() -> None:
    meeting = placed(event("m", 0, 2), "exchange")
    others = [
        placed(event("t", 0, 1, transparent=True), "zoho"),
        placed(event("x", 0, 1, status=EventStatus.CANCELLED), "zoho"),
        placed(event("d", 0, 1, attendees=[Attendee(OWNER, partstat=PartStat.DECLINED)]), "zoho"),
        placed(event("z", 1, 1), "zoho"),  # zero length
    ]
    assert find_conflicts([meeting, *others], owner=OWNER) == []
    # tentative and unanswered invitations still block
    maybe = placed(event("n", 0, 1, attendees=[Attendee(OWNER)]), "zoho")
    assert maybe.event.effective_busy_type(OWNER) is BusyType.BUSY_TENTATIVE
    assert len(find_conflicts([meeting, maybe], owner=OWNER)) == 1


def test_all_day_events_are_placed_in_the_owners_zone() -> None:
    # 2026-10-26 in Tokyo starts at 2026-10-25T15:00Z
    offsite = placed(Event(uid="o", start=date(2026, 10, 26), end=date(2026, 10, 27), summary="Offsite"), "zoho")
    late = placed(Event(uid="l", start=datetime(2026, 10, 25, 16, tzinfo=UTC),
                        end=datetime(2026, 10, 25, 17, tzinfo=UTC)), "exchange")
    assert len(find_conflicts([offsite, late], default_tz=TOKYO)) == 1
    assert find_conflicts([offsite, late], default_tz=UTC) == []


def test_floating_times_use_default_zone_across_dst() -> None:
    # floating 09:00 on the Monday after Paris left summer time is 08:00Z, not 07:00Z
    floating = placed(Event(uid="f", start=datetime(2026, 10, 26, 9), end=datetime(2026, 10, 26, 10)), "inhouse")
    utc = placed(Event(uid="u", start=datetime(2026, 10, 26, 7, 30, tzinfo=UTC),
                       end=datetime(2026, 10, 26, 8, 15, tzinfo=UTC)), "exchange")
    [conflict] = find_conflicts([floating, utc], default_tz=PARIS)
    assert (conflict.start, conflict.end) == (datetime(2026, 10, 26, 8, tzinfo=UTC), datetime(2026, 10, 26, 8, 15, tzinfo=UTC))


def test_new_york_all_day_event_on_the_dst_day_lasts_25_hours() -> None:
    # 2026-11-01 in New York runs 04:00Z to 05:00Z the next day (clocks go back at 02:00)
    sunday = placed(Event(uid="s", start=date(2026, 11, 1), end=date(2026, 11, 2), summary="Family day"), "zoho")
    late = placed(Event(uid="l", start=datetime(2026, 11, 2, 4, 30, tzinfo=UTC),
                        end=datetime(2026, 11, 2, 5, 30, tzinfo=UTC)), "exchange")
    [conflict] = find_conflicts([sunday, late], default_tz=NEW_YORK)
    assert conflict.end == datetime(2026, 11, 2, 5, tzinfo=UTC)


# ---- duplicates ------------------------------------------------------------------------------

def test_same_uid_on_two_platforms_is_a_duplicate() -> None:
    a = placed(event("Meeting-1@zoho.com", 0, 1), "zoho")
    b = placed(event(exchange_uid("meeting-1@zoho.com"), 0, 1), "exchange")
    [group] = find_duplicates([a, b])
    assert group.members == (a, b) and group.score == 1.0
    assert group.platforms == ("exchange", "zoho")
    assert "same UID on zoho and exchange" in group.reason


def test_stale_copy_with_same_uid_is_still_a_duplicate() -> None:
    a = placed(event("u1", 0, 1), "zoho")
    b = placed(event("u1", 2, 3), "exchange")
    [group] = find_duplicates([a, b])
    assert "times differ by 2:00:00" in group.pairs[0].reason


def test_occurrences_of_a_series_are_not_duplicates() -> None:
    first = placed(event("series", 0, 1, recurrence_id=at(0)), "zoho")
    second = placed(event("series", 24, 25, recurrence_id=at(24)), "zoho")
    same_on_exchange = placed(event("series", 0, 1, recurrence_id=at(0)), "exchange")
    [group] = find_duplicates([first, second, same_on_exchange])
    assert group.members == (first, same_on_exchange)


def test_fuzzy_match_retyped_invitation() -> None:
    people = [Attendee(OWNER), Attendee("bob@example.org"), Attendee("carol@example.org")]
    a = placed(event("x1", 0, 1, "Réunion budget 2027", attendees=people), "zoho")
    b = placed(event("y2", 0, 1, "TR: Reunion budget 2027", attendees=people[:2]), "exchange")
    [group] = find_duplicates([a, b])
    pair = group.pairs[0]
    assert not pair.same_uid and 0.8 <= pair.score <= 1.0
    assert "same title" in pair.reason and "2 of 2 attendees shared" in pair.reason


def test_fuzzy_needs_more_than_time() -> None:
    a = placed(event("x1", 0, 1, None), "zoho")
    b = placed(event("y2", 0, 1, None), "exchange")
    assert find_duplicates([a, b]) == []
    # different meetings at the same time with the same people: a conflict, not a duplicate
    people = [Attendee(OWNER), Attendee("bob@example.org")]
    c = placed(event("c", 0, 1, "Budget review", attendees=people), "zoho")
    d = placed(event("d", 0, 1, "Hiring panel", attendees=people), "exchange")
    assert find_duplicates([c, d]) == []
    assert len(find_conflicts([c, d])) == 1


def test_the_owner_is_not_evidence_of_a_duplicate() -> None:
    # two one-to-ones at the same time with different people: a double booking, not one meeting
    with_bob = placed(event("a", 0, 1, "1:1", attendees=[Attendee(OWNER), Attendee("bob@example.org")]),
                      "zoho", owner=OWNER)
    with_eve = placed(event("b", 0, 1, "1:1", attendees=[Attendee(OWNER), Attendee("eve@example.org")]),
                      "exchange", owner=OWNER)
    assert find_duplicates([with_bob, with_eve]) == []
    assert len(analyse([with_bob, with_eve], owner=OWNER).conflicts) == 1


def test_fuzzy_tolerance() -> None:
    a = placed(event("x1", 0, 1, "Design review"), "zoho")
    b = placed(event("y2", 0.05, 1.05, "Design review"), "exchange")  # 3 minutes later
    [group] = find_duplicates([a, b])
    assert group.score < 1.0 and "times within 0:03:00" in group.reason
    assert find_duplicates([a, b], rules=FuzzyRules(tolerance=timedelta(minutes=2))) == []


def test_cancelled_copies_are_not_duplicates() -> None:
    a = placed(event("u1", 0, 1), "zoho")
    b = placed(event("u1", 0, 1, status=EventStatus.CANCELLED), "exchange")
    assert find_duplicates([a, b]) == []


def test_analyse_reports_copies_as_duplicate_not_conflict() -> None:
    zoho = placed(event("m1", 0, 1, "Weekly sync"), "zoho")
    exchange = placed(event("m1", 0, 1, "Weekly sync"), "exchange")
    other = placed(event("o", 0.5, 1.5, "Customer call"), "inhouse")
    result = analyse([zoho, exchange, other], owner=OWNER)
    assert [g.members for g in result.duplicates] == [(zoho, exchange)]
    # the duplicated meeting conflicts with the call once, not once per copy
    assert [(c.first, c.second) for c in result.conflicts] == [(zoho, other)]
    # without the duplicate knowledge, the raw sweep sees three overlapping pairs
    assert len(find_conflicts([zoho, exchange, other], owner=OWNER)) == 3


def test_events_of_one_identity_are_one_meeting() -> None:
    """A busy placeholder has its own UID and title: only the identity the caller passes says it is
    a copy. Copies never conflict with their original or each other, and the meeting conflicts
    with a different one once, whether or not a same-UID copy makes it a duplicate too."""
    original = placed(event("m1", 0, 1, "Weekly pipeline"), "exchange", identity="exchange/cal/m1")
    mirror = placed(event("m1", 0, 1, "Weekly pipeline"), "zoho", identity="exchange/cal/m1")
    block = placed(event("calmesh-busy-1", 0, 1, "Busy"), "projects", identity="exchange/cal/m1")
    unrelated = placed(event("b2", 0, 1, "Busy"), "projects", identity="projects/cal/b2")
    other = placed(event("o", 0.5, 1.5, "Customer call"), "inhouse")
    result = analyse([original, mirror, block, unrelated, other], owner=OWNER)
    assert [g.members for g in result.duplicates] == [(original, mirror)]
    assert [(c.first, c.second) for c in result.conflicts] == [(original, unrelated), (original, other),
                                                               (unrelated, other)]
    assert [(c.first, c.second) for c in find_conflicts([original, block], owner=OWNER)] == []


# ---- resolution proposals --------------------------------------------------------------------

def _group(*members: PlacedEvent) -> DuplicateGroup:
    [group] = find_duplicates(list(members))
    return group


def test_organizer_copy_is_never_removed() -> None:
    boss = Attendee("boss@example.org")
    many = [Attendee(f"p{i}@example.org") for i in range(6)]
    organizers = placed(event("m", 0, 1, organizer=boss, attendees=many[:2]), "zoho", owner="Boss@example.org")
    richer = placed(event("m", 0, 1, organizer=boss, attendees=many, sequence=4), "exchange", owner=OWNER)
    resolution = propose_resolution(_group(organizers, richer))
    assert resolution.keep is organizers
    [removal] = resolution.removals
    assert removal.copy is richer and "6 attendees against 2" in removal.reason


def test_organizer_home_platform_is_protected() -> None:
    boss = Attendee("boss@example.org")
    on_home = placed(event("m", 0, 1, organizer=boss), "exchange", owner=OWNER)
    elsewhere = placed(event("m", 0, 1, organizer=boss, sequence=3), "zoho", owner=OWNER)
    resolution = propose_resolution(_group(elsewhere, on_home), home_platforms={"BOSS@example.org": "exchange"})
    assert resolution.keep is on_home
    assert "home platform exchange" in resolution.decisions[1].reason
    assert [d.copy for d in resolution.removals] == [elsewhere]


def test_an_organizer_hand_copy_beside_the_home_platform_copy_is_removable() -> None:
    """The demo's case: David organises on Exchange and copied the meeting by hand into his
    in-house calendar; both calendars are his, but only the Exchange copy is where replies flow.
    With no copy on the home platform, any calendar the organizer owns is still protected."""
    david = Attendee("david@example.org")
    home = placed(event("m", 0, 1, organizer=david, attendees=[david]), "exchange", owner="david@example.org")
    by_hand = placed(event("copy", 0, 1, organizer=david, attendees=[david], sequence=2), "projects",
                     owner="david@example.org")
    resolution = propose_resolution(_group(by_hand, home), home_platforms={"david@example.org": "exchange"})
    assert resolution.keep is home and [d.copy for d in resolution.removals] == [by_hand]
    elsewhere = placed(event("m", 0, 1, organizer=david, attendees=[david]), "zoho", owner="david@example.org")
    kept = propose_resolution(_group(by_hand, elsewhere), home_platforms={"david@example.org": "exchange"})
    assert not kept.removals and all("owns this calendar" in d.reason for d in kept.decisions)


def test_keep_most_attendees_then_highest_sequence() -> None:
    a = placed(event("m", 0, 1, attendees=[Attendee(OWNER)]), "zoho")
    b = placed(event("m", 0, 1, attendees=[Attendee(OWNER), Attendee("bob@example.org")]), "exchange")
    c = placed(event("m", 0, 1, attendees=[Attendee(OWNER)], sequence=2), "inhouse")
    resolution = propose_resolution(_group(a, b, c))
    assert resolution.keep is b and "most attendees (2)" in resolution.decisions[1].reason
    assert {d.copy.platform for d in resolution.removals} == {"zoho", "inhouse"}
    tie = propose_resolution(_group(a, c))
    assert tie.keep is c and "SEQUENCE 2" in tie.decisions[1].reason


def test_calmesh_sync_copies_are_left_to_the_sync_group() -> None:
    original = placed(event("m", 0, 1, sequence=1), "zoho")
    mirror = placed(event("m", 0, 1, extra={MARKER_PROPERTY: "zoho/cal/m"}), "exchange")
    resolution = propose_resolution(_group(original, mirror))
    assert resolution.removals == ()
    assert "sync" in resolution.decisions[1].reason


def test_a_sync_copy_listed_first_never_gets_its_original_removed() -> None:
    """Found by the agency test: Alice's own event on Radicale and its mirror on her Exchange
    calendar, equal in every rank, the mirror read first: the mirror was kept and the original
    proposed for removal (which sync would then have spread to the mirror)."""
    original = placed(event("m", 0, 1), "radicale")
    mirror = placed(event("m", 0, 1, extra={MARKER_PROPERTY: "radicale/cal/m.ics"}), "exchange")
    resolution = propose_resolution(_group(mirror, original))
    assert resolution.keep is original and resolution.removals == ()


# ---- properties ------------------------------------------------------------------------------

PLATFORMS = ("exchange", "zoho", "inhouse")


@st.composite
def calendars(draw: st.DrawFn, max_size: int = 40) -> list[PlacedEvent]:
    """Random events of one person on three platforms, dense enough to overlap a lot."""
    n = draw(st.integers(0, max_size))
    out = []
    for i in range(n):
        start = draw(st.integers(0, 48)) * 15
        length = draw(st.sampled_from([0, 15, 30, 60, 90, 240]))
        partstat = draw(st.sampled_from(list(PartStat)))
        e = Event(
            uid=draw(st.sampled_from([f"u{i}", "shared", "Shared "])),
            start=T0 + timedelta(minutes=start), end=T0 + timedelta(minutes=start + length),
            summary=draw(st.sampled_from([None, "Weekly sync", "RE: weekly sync", "Budget", "Lunch"])),
            transparent=draw(st.booleans()) and draw(st.booleans()),
            status=draw(st.sampled_from(list(EventStatus))),
            attendees=[Attendee(OWNER, partstat=partstat)],
        )
        out.append(PlacedEvent(e, draw(st.sampled_from(PLATFORMS)), "cal", ref=str(i)))
    return out


def brute_force_conflicts(events: list[PlacedEvent], owner: str) -> set[tuple[int, int]]:
    out = set()
    for (i, a), (j, b) in itertools.combinations(enumerate(events), 2):
        sa, ea = a.event.span_utc()
        sb, eb = b.event.span_utc()
        blocking = all(e.event.effective_busy_type(owner) is not BusyType.FREE for e in (a, b))
        if blocking and ea > sa and eb > sb and sa < eb and sb < ea:
            out.add((i, j))
    return out


def _indices(events: list[PlacedEvent], pairs: list[tuple[PlacedEvent, PlacedEvent]]) -> set[tuple[int, int]]:
    where = {id(e): i for i, e in enumerate(events)}
    return {(min(where[id(a)], where[id(b)]), max(where[id(a)], where[id(b)])) for a, b in pairs}


@settings(max_examples=200, deadline=None, derandomize=True)
@given(calendars())
def test_sweep_equals_brute_force(events: list[PlacedEvent]) -> None:
    found = find_conflicts(events, owner=OWNER)
    assert _indices(events, [(c.first, c.second) for c in found]) == brute_force_conflicts(events, OWNER)
    for c in found:
        assert c.start < c.end
        assert c.first.event.span_utc()[0] <= c.start and c.end <= c.first.event.span_utc()[1]


@settings(max_examples=100, deadline=None, derandomize=True)
@given(calendars(), st.randoms(use_true_random=False))
def test_conflicts_do_not_depend_on_input_order(events: list[PlacedEvent], rnd: random.Random) -> None:
    shuffled = events[:]
    rnd.shuffle(shuffled)
    a = {frozenset((id(c.first), id(c.second))) for c in find_conflicts(events, owner=OWNER)}
    b = {frozenset((id(c.first), id(c.second))) for c in find_conflicts(shuffled, owner=OWNER)}
    assert a == b


def _components(pairs: set[tuple[int, int]]) -> set[frozenset[int]]:
    groups: list[set[int]] = []
    for a, b in pairs:
        joined = [g for g in groups if a in g or b in g]
        merged = {a, b}.union(*joined)
        groups = [g for g in groups if g not in joined] + [merged]
    return {frozenset(g) for g in groups}


@settings(max_examples=100, deadline=None, derandomize=True)
@given(calendars(max_size=25))
def test_duplicate_scan_equals_pairwise_check(events: list[PlacedEvent]) -> None:
    """The near-time scan finds the same groups as scoring every pair on its own."""
    groups = find_duplicates(events)
    where = {id(e): i for i, e in enumerate(events)}
    fast = {frozenset(where[id(m)] for m in g.members) for g in groups}
    slow = {(i, j) for i, j in itertools.combinations(range(len(events)), 2)
            if find_duplicates([events[i], events[j]])}
    assert fast == _components(slow)
    for g in groups:
        assert all(0.0 <= p.score <= 1.0 and p.reason for p in g.pairs)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(calendars(max_size=25))
def test_analyse_never_reports_a_duplicate_pair_as_conflict(events: list[PlacedEvent]) -> None:
    result = analyse(events, owner=OWNER)
    group_of = {id(m): n for n, g in enumerate(result.duplicates) for m in g.members}
    for c in result.conflicts:
        assert group_of.get(id(c.first), -1) != group_of.get(id(c.second), -2)
    raw = _indices(events, [(c.first, c.second) for c in find_conflicts(events, owner=OWNER)])
    assert _indices(events, [(c.first, c.second) for c in result.conflicts]) <= raw


def test_bad_input_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="platform"):
        PlacedEvent(event("a", 0, 1), "", "cal")
    with pytest.raises(ValueError, match="threshold"):
        FuzzyRules(threshold=0)
    a, b = placed(event("m", 0, 1), "zoho"), placed(event("m", 0, 1), "exchange")
    groups = find_duplicates([a, b])
    with pytest.raises(ValueError, match="not among the events analysed"):
        find_conflicts([a, placed(event("m", 0, 1), "exchange")], duplicates=groups)

"""Problems are structured where they are met and shown per asker where they leave (issue 14,
item 1): whole to the operator and to askers granted the person's details, a count and a reason to
anyone else, and nothing of a private event (title, UID, text) at a door, whoever asks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from calmesh import ical
from calmesh.core.overlaps import PlacedEvent, analyse
from calmesh.model import Attendee, Classification, Event, Problem, ProblemCode, Window, shown
from calmesh.services.detection import PersonAnalysis, conflicts_json, duplicates_json

WEEK = Window(datetime(2030, 3, 4, tzinfo=UTC), datetime(2030, 3, 11, tzinfo=UTC))


def event_text(*lines: str) -> bytes:
    body = "\r\n".join(lines)
    return (f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n{body}\r\n"
            "END:VEVENT\r\nEND:VCALENDAR\r\n").encode()


def read(*lines: str) -> list[Problem]:
    _events, problems = ical.expand(event_text(*lines), WEEK, "projects")
    return problems


# ------------------------------------------------------------------------- made where they are met
def test_an_unknown_zone_names_the_event_its_kind_and_its_class() -> None:
    problem, _on_dtend = read("UID:u1", "SUMMARY:Merger talks", "CLASS:PRIVATE",
                              "DTSTART;TZID=Mars/Olympus:20300305T100000", "DTEND;TZID=Mars/Olympus:20300305T110000")
    assert (problem.code, problem.item, problem.title, problem.private) == (
        ProblemCode.UNKNOWN_ZONE, "UID u1", "Merger talks", True)
    assert "Mars/Olympus" in problem.message


def test_an_event_ending_before_it_starts_is_said_so() -> None:
    (problem,) = read("UID:u2", "SUMMARY:Backwards", "DTSTART:20300305T110000Z", "DTEND:20300305T100000Z")
    assert (problem.code, problem.private, problem.title) == (ProblemCode.END_BEFORE_START, False, "Backwards")


def test_an_unreadable_rule_is_a_recurrence_problem_of_the_series() -> None:
    (problem,) = read("UID:u3", "SUMMARY:Standup", "CLASS:CONFIDENTIAL", "DTSTART:20300304T090000Z",
                      "DTEND:20300304T091500Z", "RRULE:FREQ=FORTNIGHTLY")
    assert (problem.code, problem.item, problem.private) == (ProblemCode.RECURRENCE, "UID u3", True)
    assert problem.unknown is not None  # the rest of the series: unknown time, an error


def test_a_line_cut_out_of_a_damaged_private_block_keeps_its_class() -> None:
    data = (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:u4\r\nCLASS:PRIVATE\r\nDTSTART:20300305T100000Z\r\n"
            b"DTEND:20300305T110000Z\r\nX-BAD;\"=\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nbroken\r\n")
    _events, problems = ical.expand(data, WEEK, "projects")
    (cut,) = [p for p in problems if p.item == "UID u4"]
    assert cut.code is ProblemCode.PROPERTY and cut.private


# ------------------------------------------------------------------------- shown per asker
PUBLIC = Problem("projects", "DTEND 2030-03-05 10:00 is before DTSTART 2030-03-05 11:00", "UID pub",
                 code=ProblemCode.END_BEFORE_START, title="Budget review")
PRIVATE = Problem("projects", "unreadable CREATED ignored (Wrong datetime format: Secret line)", "UID priv",
                  code=ProblemCode.PROPERTY, title="Merger talks", private=True)
PRIVATE_BACKWARDS = Problem("projects", "DTEND before DTSTART", "UID priv2", code=ProblemCode.END_BEFORE_START,
                            title="Doctor", private=True)
PLATFORM = Problem("exchange", "did not answer within 5s")


def test_the_operator_and_the_granted_read_a_public_event_whole() -> None:
    assert str(PUBLIC) == ("projects: 'Budget review' (UID pub): "
                           "DTEND 2030-03-05 10:00 is before DTSTART 2030-03-05 11:00")
    assert shown([PUBLIC], details=True) == [str(PUBLIC)]


def test_even_the_granted_read_only_a_count_of_private_events() -> None:
    assert shown([PRIVATE, PUBLIC], details=True) == [
        "projects: 1 event could not be fully read (unreadable property ignored)", str(PUBLIC)]


def test_a_private_item_is_kept_with_its_kind_never_its_text() -> None:
    assert PRIVATE.plain_message == "unreadable property ignored" and PUBLIC.plain_message == PUBLIC.message


def test_others_read_a_count_and_a_reason_per_platform() -> None:
    texts = shown([PUBLIC, PLATFORM, PRIVATE, PRIVATE_BACKWARDS, PUBLIC], details=False)
    assert texts == ["projects: 2 events could not be fully read (end before start)",
                     "exchange: did not answer within 5s",
                     "projects: 1 event could not be fully read (unreadable property ignored)"]
    for secret in ("Budget", "Merger", "Doctor", "UID", "Secret", "DTEND"):
        assert not any(secret in text for text in texts)


def test_published_working_hours_that_cannot_be_read_are_said_so() -> None:
    problem = Problem("availability", "HTTP 404", "https://intranet.example/pia.ics", code=ProblemCode.WORKING_HOURS)
    assert shown([problem], details=False) == ["availability: published working hours could not be read"]
    assert "intranet" in shown([problem], details=True)[0]


@pytest.mark.parametrize("code", list(ProblemCode))
def test_every_code_has_a_reason_anyone_may_read(code: ProblemCode) -> None:
    assert code.reason and code.reason[0].islower()


# ------------------------------------------------------------------------- conflicts and duplicates
def _placed(uid: str, summary: str, platform: str, private: bool, hour: int = 10) -> PlacedEvent:
    start = datetime(2030, 3, 5, hour, tzinfo=UTC)
    event = Event(uid=uid, start=start, end=start + timedelta(hours=1), summary=summary,
                  organizer=Attendee("boss@corp.example"),
                  classification=Classification.PRIVATE if private else Classification.PUBLIC)
    return PlacedEvent(event, platform, "pia.ics", ref=uid, owner="pia@corp.example")


def _analysis() -> PersonAnalysis:
    placed = [_placed("secret-uid", "Merger talks", "home", True), _placed("secret-uid", "Merger talks", "projects", True),
              _placed("public-uid", "Budget review", "home", False)]
    result = analyse(placed, owner="pia@corp.example")
    assert result.conflicts and result.duplicates
    return PersonAnalysis("pia@corp.example", "Pia", result.conflicts, result.duplicates,
                          warnings=[PRIVATE, PUBLIC])


def test_conflicts_and_duplicates_without_details_show_time_and_place_only() -> None:
    text = str(conflicts_json(_analysis(), UTC, details=False)) + str(duplicates_json(_analysis(), UTC, details=False))
    for secret in ("secret-uid", "public-uid", "boss@", "Merger", "Budget", "Secret"):
        assert secret not in text
    assert "pia.ics" in text and "could not be fully read" in text


def test_conflicts_and_duplicates_with_details_name_public_events_only() -> None:
    conflicts = conflicts_json(_analysis(), UTC, details=True)
    text = str(conflicts) + str(duplicates_json(_analysis(), UTC, details=True))
    assert "public-uid" in text and "Budget review" in text and "boss@" in text
    for secret in ("secret-uid", "Merger", "Secret line"):
        assert secret not in text
    private = next(e for c in conflicts["conflicts"] for e in c["events"] if e["uid"] is None)
    assert private["summary"] is None and private["organizer"] is None


def test_the_operator_reads_everything_to_act_on_but_private_titles_in_conflicts() -> None:
    """The CLI (``details`` None): every problem whole, every copy's UID and organiser (to resolve
    duplicates by), and a private copy's title no more than before."""
    assert shown([PRIVATE, PUBLIC], details=None) == [str(PRIVATE), str(PUBLIC)]
    text = str(conflicts_json(_analysis(), UTC)) + str(duplicates_json(_analysis(), UTC))
    assert "secret-uid" in text and "boss@" in text and "Secret line" in text
    assert "'summary': 'Merger talks'" not in text

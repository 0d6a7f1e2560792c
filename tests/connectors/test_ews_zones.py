"""Zones of an object's own as EWS ``TimeZoneDefinitionType`` s (calmesh.connectors._ews_zones),
each checked against the EWS fake's own reading of the definition (calmesh.fakes.ews_zones, which
computes offsets from the Periods and Transitions without calmesh's conversion) and against the
VTIMEZONE it came from, hour by hour over the years the definition covers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

import pytest
from defusedxml.ElementTree import fromstring
from exchangelib.util import xml_to_str

from calmesh import ical
from calmesh.connectors import _ews_zones
from calmesh.fakes.ews import _event_from_fields, _SoapError
from calmesh.fakes.ews_zones import InvalidZone, zone_from
from calmesh.timezones import DefinedZone
from timekeeping.zone_calendars import ONE_SUMMER, SYDNEY_OLD_RULES, Rules, customized

ZONES = {
    "yearly rules": customized("m@test", Rules("+0100", "+0200", (4, "1SU", 2), (10, "1SU", 3))),
    "today's rules for 2001": SYDNEY_OLD_RULES,
    "one-off changes": ONE_SUMMER,
    "east of UTC, no changes": customized("j@test", Rules("+0915")).replace("20250115", "20250116"),
}


def own_zone(text: str) -> DefinedZone:
    items, problems = ical.parse_items(text)
    zone = items[0].components[0].start.tzinfo  # type: ignore[union-attr]
    assert not problems and isinstance(zone, DefinedZone), zone
    return zone


def as_sent(zone: DefinedZone, first_year: int) -> str:
    return xml_to_str(_ews_zones.definition_xml(_ews_zones.definition_of(zone, first_year), "t:StartTimeZone"))


def differences(a: tzinfo, b: tzinfo, first_year: int, last_year: int) -> list[str]:
    """Where ``a`` and ``b`` disagree: at noon UTC every third day, and every hour of the three
    days up to a noon at which either's offset changed (dateutil's VTIMEZONE rules, walking
    their RRULEs from 1601 at each call, are too slow to ask every hour of sixteen years)."""
    def offsets(instant: datetime) -> tuple[timedelta | None, timedelta | None]:
        return instant.astimezone(a).utcoffset(), instant.astimezone(b).utcoffset()

    out: list[str] = []
    day = datetime(first_year, 1, 1, 12, tzinfo=UTC)
    before = offsets(day)
    while day.year <= last_year and len(out) < 3:
        now = offsets(day)
        hours = [day - timedelta(hours=h) for h in range(72)] if now != before else [day]
        out += [f"{i}: {offsets(i)}" for i in hours if len(set(offsets(i))) != 1]
        before, day = now, day + timedelta(days=3)
    return out


@pytest.mark.parametrize("name", list(ZONES))
def test_a_zone_of_its_own_is_written_as_a_definition_exchange_reads_alike(name: str) -> None:
    zone = own_zone(ZONES[name])
    first = ical.parse_items(ZONES[name])[0][0].components[0].start.year - 1  # type: ignore[union-attr]
    sent = as_sent(zone, first)
    assert differences(zone, zone_from(fromstring(sent)), first, first + 16) == []


@pytest.mark.parametrize("name", list(ZONES))
def test_a_definition_read_back_is_the_zone_it_was_written_from(name: str) -> None:
    """Read back as a VTIMEZONE (what a CalDAV copy then carries): the same offsets, and a zone
    of the object's own again, never UTC or another zone."""
    zone = own_zone(ZONES[name])
    first = ical.parse_items(ZONES[name])[0][0].components[0].start.year - 1  # type: ignore[union-attr]
    read = _ews_zones.zone_of(_ews_zones.read_definition(fromstring(as_sent(zone, first))), first + 1)
    assert isinstance(read, DefinedZone) and read.key == zone.key
    assert differences(zone, read, first, first + 16) == []


def test_one_off_changes_are_absolute_date_transitions_at_their_local_time() -> None:
    sent = as_sent(own_zone(ONE_SUMMER), 2024)
    assert sent.count("<t:AbsoluteDateTransition>") == 4 and "<t:RecurringDayTransition>" not in sent
    assert "<t:DateTime>2025-03-30T02:00:00</t:DateTime>" in sent
    assert "<t:DateTime>2026-10-25T03:00:00</t:DateTime>" in sent
    assert 'Bias="-PT3H"' in sent and 'Bias="-PT4H"' in sent


def test_yearly_changes_are_recurring_day_transitions() -> None:
    sent = as_sent(own_zone(ZONES["yearly rules"]), 2024)
    assert sent.count("<t:RecurringDayTransition>") == 2 and "AbsoluteDateTransition" not in sent
    assert ("<t:TimeOffset>PT2H</t:TimeOffset><t:Month>4</t:Month><t:DayOfWeek>Sunday</t:DayOfWeek>"
            "<t:Occurrence>1</t:Occurrence>") in sent


BROKEN = {
    "no Periods": "<t:Transitions><t:Transition><t:To Kind='Group'>0</t:To></t:Transition></t:Transitions>",
    "a group naming an unknown Period": (
        "<t:Periods><t:Period Bias='-PT1H' Name='Standard' Id='std'/></t:Periods>"
        "<t:TransitionsGroups><t:TransitionsGroup Id='0'><t:Transition><t:To Kind='Period'>dst</t:To>"
        "</t:Transition></t:TransitionsGroup></t:TransitionsGroups>"
        "<t:Transitions><t:Transition><t:To Kind='Group'>0</t:To></t:Transition></t:Transitions>"),
    "an Occurrence out of range": (
        "<t:Periods><t:Period Bias='-PT1H' Name='Standard' Id='std'/></t:Periods>"
        "<t:TransitionsGroups><t:TransitionsGroup Id='0'><t:RecurringDayTransition><t:To Kind='Period'>std</t:To>"
        "<t:TimeOffset>PT2H</t:TimeOffset><t:Month>3</t:Month><t:DayOfWeek>Sunday</t:DayOfWeek>"
        "<t:Occurrence>7</t:Occurrence></t:RecurringDayTransition></t:TransitionsGroup></t:TransitionsGroups>"
        "<t:Transitions><t:Transition><t:To Kind='Group'>0</t:To></t:Transition></t:Transitions>"),
    "no Transitions": (
        "<t:Periods><t:Period Bias='-PT1H' Name='Standard' Id='std'/></t:Periods>"
        "<t:TransitionsGroups><t:TransitionsGroup Id='0'><t:Transition><t:To Kind='Period'>std</t:To>"
        "</t:Transition></t:TransitionsGroup></t:TransitionsGroups>"),
}


@pytest.mark.parametrize("name", list(BROKEN))
def test_the_ews_fake_refuses_a_broken_zone_definition_with_error_time_zone(name: str) -> None:
    elem = fromstring('<t:StartTimeZone xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types" '
                      f'Id="Custom">{BROKEN[name]}</t:StartTimeZone>')
    with pytest.raises(InvalidZone):
        zone_from(elem)
    with pytest.raises(_SoapError) as raised:
        _event_from_fields({"Start": "2025-01-06T09:00:00Z", "End": "2025-01-06T10:00:00Z", "StartTimeZone": elem},
                           None, "UTC")
    assert raised.value.code == "ErrorTimeZone"


def test_a_zone_ews_cannot_carry_is_spelled_out_with_the_reason() -> None:
    """The fallback: where the definition cannot be built, the series is written in a known zone
    as on Graph, and the notice says why it was not carried."""
    from calmesh.connectors import _exchange_common as ex

    def cannot(_zone: DefinedZone, _master: object) -> None:
        raise ValueError("no definition for this one")

    [item], _problems = ical.parse_items(ZONES["yearly rules"])
    fitted, notes = ex.fit("exchange", item, "UTC", lambda _pattern: None, reminders=1, carries=cannot)
    [note] = notes
    assert note.feature == "VTIMEZONE" and "cannot be carried here (no definition for this one)" in note.detail
    assert fitted.master is not None and not isinstance(fitted.master.start.tzinfo, DefinedZone)  # type: ignore[union-attr]

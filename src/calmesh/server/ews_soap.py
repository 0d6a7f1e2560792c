"""EWS SOAP building blocks: envelopes, faults, and Exchange's two ways of writing a time zone.

Shared by anything in calmesh that has to *speak* EWS rather than consume it (the availability
door, and any fake Exchange server). Parsing goes through defusedxml (no DTDs, no entities, so
billion-laughs and external-entity payloads are refused); writing through ElementTree.

Time zones: availability requests and answers carry a "SerializableTimeZone" (a standard bias
plus the yearly DST rules as "n-th weekday of a month at a time"); GetServerTimeZones answers
carry a full ``TimeZoneDefinition`` (periods + transition groups). :func:`zone_rules` derives
both from an IANA zone via zoneinfo, and :class:`RuleZone` turns a client's rules back into a
``tzinfo`` so its local times are read exactly as the client meant them.
"""

from __future__ import annotations

import calendar
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
M = "http://schemas.microsoft.com/exchange/services/2006/messages"
T = "http://schemas.microsoft.com/exchange/services/2006/types"
E = "http://schemas.microsoft.com/exchange/services/2006/errors"
"""Where Exchange puts a fault's ``ResponseCode`` and ``Message`` (exchangelib looks there)."""
XSI = "http://www.w3.org/2001/XMLSchema-instance"
for _prefix, _uri in (("s", SOAP), ("m", M), ("t", T), ("e", E), ("xsi", XSI)):
    ET.register_namespace(_prefix, _uri)

SERVER_BUILD = {"MajorVersion": "15", "MinorVersion": "1", "MajorBuildNumber": "2507", "MinorBuildNumber": "6"}
"""Exchange 2016 CU: what calmesh reports in ``ServerVersionInfo``."""
DEFAULT_API_VERSION = "Exchange2016"
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class SoapError(ValueError):
    """A request calmesh refuses as a whole, answered as Exchange does: a SOAP fault (HTTP 500)
    whose detail carries the EWS ``ResponseCode``. The default code is the one Exchange gives
    for XML it cannot read or a request that breaks the schema (including hostile XML)."""

    def __init__(self, message: str, code: str = "ErrorSchemaValidation") -> None:
        super().__init__(message)
        self.code = code


def m(name: str) -> str:
    return f"{{{M}}}{name}"


def t(name: str) -> str:
    return f"{{{T}}}{name}"


def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    child = ET.SubElement(parent, tag, attrs)
    if text is not None:
        child.text = text
    return child


@dataclass(frozen=True, slots=True)
class Envelope:
    header: ET.Element | None
    operation: ET.Element
    """The first child of ``s:Body``: the request element (``m:GetUserAvailabilityRequest`` ...)."""

    @property
    def name(self) -> str:
        return self.operation.tag.rsplit("}", 1)[-1]

    def header_child(self, tag: str) -> ET.Element | None:
        return self.header.find(tag) if self.header is not None else None


def parse_xml(body: bytes) -> ET.Element:
    """Parse untrusted XML: no DTDs, no entities, no external references."""
    try:
        return SafeET.fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (DefusedXmlException, ET.ParseError, ValueError) as exc:
        raise SoapError(f"not acceptable XML: {exc.__class__.__name__}: {exc}") from None


def parse_envelope(body: bytes) -> Envelope:
    root = parse_xml(body)
    if root.tag != f"{{{SOAP}}}Envelope":
        raise SoapError("not a SOAP 1.1 envelope")
    body_el = root.find(f"{{{SOAP}}}Body")
    if body_el is None or len(body_el) == 0:
        raise SoapError("the SOAP envelope has no body")
    return Envelope(root.find(f"{{{SOAP}}}Header"), body_el[0])


def envelope(operation: ET.Element, api_version: str = DEFAULT_API_VERSION) -> bytes:
    root = ET.Element(f"{{{SOAP}}}Envelope")
    header = sub(root, f"{{{SOAP}}}Header")
    sub(header, t("ServerVersionInfo"), **SERVER_BUILD, Version=api_version)
    sub(root, f"{{{SOAP}}}Body").append(operation)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


FAULT_STATUS = 500
"""SOAP 1.1 (section 6.2) and Exchange answer every fault with HTTP 500; clients such as
exchangelib only read the fault's detail at that status."""


def fault(code: str, message: str, api_version: str = DEFAULT_API_VERSION) -> bytes:
    """A SOAP fault shaped like Exchange's: ``faultcode`` is the EWS code as a QName in the types
    namespace, and ``detail`` holds ``e:ResponseCode`` and ``e:Message`` (errors namespace),
    from which exchangelib raises the matching ``exchangelib.errors`` class."""
    el = ET.Element(f"{{{SOAP}}}Fault")
    sub(el, "faultcode", f"t:{code}")  # the envelope's header declares t: (ServerVersionInfo)
    sub(el, "faultstring", message, **{"{http://www.w3.org/XML/1998/namespace}lang": "en-US"})
    detail = sub(el, "detail")
    sub(detail, f"{{{E}}}ResponseCode", code)
    sub(detail, f"{{{E}}}Message", message)
    return envelope(el, api_version)


def response_message(parent: ET.Element, tag: str, code: str = "NoError", text: str | None = None) -> ET.Element:
    """A ``*ResponseMessage`` with its class and code (Success when ``code`` is NoError)."""
    msg = sub(parent, tag, ResponseClass="Success" if code == "NoError" else "Error")
    if text is not None:
        sub(msg, m("MessageText"), text)
    sub(msg, m("ResponseCode"), code)
    if code != "NoError":
        sub(msg, m("DescriptiveLinkKey"), "0")
    return msg


def local_text(value: datetime, zone: tzinfo) -> str:
    """An EWS local time: the instant in ``zone``, written without an offset."""
    return value.astimezone(zone).replace(tzinfo=None).isoformat(timespec="seconds")


def minutes_text(delta: timedelta) -> str:
    """An xs:duration such as ``-PT1H`` or ``PT5H30M``."""
    minutes = int(delta.total_seconds() // 60)
    sign, minutes = ("-" if minutes < 0 else ""), abs(minutes)
    hours, rest = divmod(minutes, 60)
    return f"{sign}PT{hours}H{rest}M" if rest else f"{sign}PT{hours}H"


# ----------------------------------------------------------------------------------- time zones
@dataclass(frozen=True, slots=True)
class Rule:
    """A yearly transition: on the ``order``-th (5 = last) ``weekday`` of ``month`` at local ``at``;
    or, when ``fixed`` (Windows' absolute form, a ``Year`` in the request), on day ``order`` of
    ``month`` (the EWS Managed API sends .NET's fixed-date rules that way, to recur every year)."""

    month: int
    order: int
    weekday: int
    at: time
    fixed: bool = False


@dataclass(frozen=True, slots=True)
class ZoneRules:
    bias: int
    """Minutes to add to local standard time to get UTC (Paris: -60, New York: 300)."""
    daylight_bias: int = 0
    """Minutes added to ``bias`` during daylight time (usually -60); 0 without DST."""
    to_standard: Rule | None = None
    to_daylight: Rule | None = None


def _rule_for(instant: datetime, zone: ZoneInfo, before: timedelta) -> Rule:
    local = (instant + before).replace(tzinfo=None)
    days_in_month = calendar.monthrange(local.year, local.month)[1]
    order = 5 if local.day + 7 > days_in_month else (local.day - 1) // 7 + 1
    return Rule(local.month, order, local.weekday(), local.time())


def zone_rules(zone: ZoneInfo, year: int) -> ZoneRules:
    """The Windows-style rules of ``zone`` in ``year``, found by scanning its UTC offsets."""
    start = datetime(year, 1, 1, tzinfo=UTC)
    offsets: list[tuple[datetime, timedelta, timedelta]] = []  # (instant, offset before, offset after)
    previous = start.astimezone(zone).utcoffset() or timedelta(0)
    cursor = start
    while cursor.year == year:
        nxt = cursor + timedelta(days=1)
        offset = nxt.astimezone(zone).utcoffset() or timedelta(0)
        if offset != previous:
            lo, hi = cursor, nxt  # bisect to the minute
            while hi - lo > timedelta(minutes=1):
                mid = lo + (hi - lo) / 2
                if (mid.astimezone(zone).utcoffset() or timedelta(0)) == previous:
                    lo = mid
                else:
                    hi = mid
            offsets.append((hi.replace(second=0, microsecond=0), previous, offset))
            previous = offset
        cursor = nxt
    if len(offsets) != 2:
        standard = (datetime(year, 7, 1, tzinfo=UTC).astimezone(zone).utcoffset() or timedelta(0))
        if offsets:  # a one-off change this year: describe the offset that holds at its end
            standard = offsets[-1][2]
        return ZoneRules(bias=-int(standard.total_seconds() // 60))
    (first, before1, after1), (second, before2, after2) = offsets
    standard, daylight = (before1, after1) if after1 > before1 else (after1, before1)
    into_daylight = (first, before1) if after1 > before1 else (second, before2)
    into_standard = (second, before2) if after1 > before1 else (first, before1)
    return ZoneRules(
        bias=-int(standard.total_seconds() // 60),
        daylight_bias=-int((daylight - standard).total_seconds() // 60),
        to_standard=_rule_for(into_standard[0], zone, into_standard[1]),
        to_daylight=_rule_for(into_daylight[0], zone, into_daylight[1]),
    )


_NO_DST_STANDARD = Rule(1, 1, 6, time(0))
_NO_DST_DAYLIGHT = Rule(12, 5, 6, time(0))


def _transition(parent: ET.Element, tag: str, bias: int, rule: Rule) -> None:
    el = sub(parent, t(tag))
    sub(el, t("Bias"), str(bias))
    sub(el, t("Time"), rule.at.strftime("%H:%M:%S"))
    sub(el, t("DayOrder"), str(rule.order))
    sub(el, t("Month"), str(rule.month))
    sub(el, t("DayOfWeek"), WEEKDAYS[rule.weekday])


def availability_timezone(parent: ET.Element, rules: ZoneRules) -> ET.Element:
    """``t:TimeZone`` (availability flavour: Bias, StandardTime, DaylightTime)."""
    el = sub(parent, t("TimeZone"))
    sub(el, t("Bias"), str(rules.bias))
    _transition(el, "StandardTime", 0, rules.to_standard or _NO_DST_STANDARD)
    _transition(el, "DaylightTime", rules.daylight_bias, rules.to_daylight or _NO_DST_DAYLIGHT)
    return el


def timezone_definition(parent: ET.Element, zone_id: str, name: str, rules: ZoneRules) -> ET.Element:
    """``t:TimeZoneDefinition`` as GetServerTimeZones returns it (one recurring rule group)."""
    el = sub(parent, t("TimeZoneDefinition"), Id=zone_id, Name=name)
    periods = sub(el, t("Periods"))
    std_id, dst_id = f"trule:calmesh/{zone_id}/Standard", f"trule:calmesh/{zone_id}/Daylight"
    sub(periods, t("Period"), Bias=minutes_text(timedelta(minutes=rules.bias)), Name="Standard", Id=std_id)
    group = sub(sub(el, t("TransitionsGroups")), t("TransitionsGroup"), Id="0")
    if rules.to_standard is None or rules.to_daylight is None:
        sub(sub(group, t("Transition")), t("To"), std_id, Kind="Period")
    else:
        sub(periods, t("Period"), Bias=minutes_text(timedelta(minutes=rules.bias + rules.daylight_bias)),
            Name="Daylight", Id=dst_id)
        for target, rule in ((dst_id, rules.to_daylight), (std_id, rules.to_standard)):
            transition = sub(group, t("RecurringDayTransition"))
            sub(transition, t("To"), target, Kind="Period")
            sub(transition, t("TimeOffset"), minutes_text(timedelta(hours=rule.at.hour, minutes=rule.at.minute)))
            sub(transition, t("Month"), str(rule.month))
            sub(transition, t("DayOfWeek"), WEEKDAYS[rule.weekday])
            sub(transition, t("Occurrence"), "-1" if rule.order == 5 else str(rule.order))
    sub(sub(sub(el, t("Transitions")), t("Transition")), t("To"), "0", Kind="Group")
    return el


def _nth_weekday(year: int, rule: Rule) -> datetime:
    first_weekday, days = calendar.monthrange(year, rule.month)
    if rule.fixed:
        return datetime.combine(datetime(year, rule.month, min(rule.order, days)).date(), rule.at)
    day = 1 + (rule.weekday - first_weekday) % 7 + 7 * (min(rule.order, 5) - 1)
    while day > days:
        day -= 7
    return datetime.combine(datetime(year, rule.month, day).date(), rule.at)


class RuleZone(tzinfo):
    """A ``tzinfo`` following Windows-style rules, as a client described its zone in a request."""

    def __init__(self, rules: ZoneRules) -> None:
        self.rules = rules

    def _in_daylight(self, naive: datetime, shift: tuple[timedelta, timedelta] = (timedelta(0), timedelta(0))) -> bool:
        """Whether ``naive`` (local wall time, or UTC when ``shift`` holds the two offsets to
        subtract from the transition times) falls in daylight time."""
        r = self.rules
        if r.to_daylight is None or r.to_standard is None or r.daylight_bias == 0:
            return False
        naive = naive.replace(tzinfo=None)
        start = _nth_weekday(naive.year, r.to_daylight) - shift[0]
        end = _nth_weekday(naive.year, r.to_standard) - shift[1]
        if start < end:
            return start <= naive < end
        return naive >= start or naive < end  # southern hemisphere

    def utcoffset(self, dt: datetime | None) -> timedelta:
        bias = self.rules.bias
        if dt is not None and self._in_daylight(dt):
            bias += self.rules.daylight_bias
        return timedelta(minutes=-bias)

    def dst(self, dt: datetime | None) -> timedelta:
        if dt is not None and self._in_daylight(dt):
            return timedelta(minutes=-self.rules.daylight_bias)
        return timedelta(0)

    def tzname(self, dt: datetime | None) -> str:
        return "calmesh-request-zone"

    def fromutc(self, dt: datetime) -> datetime:
        standard = timedelta(minutes=-self.rules.bias)
        daylight = standard + timedelta(minutes=-self.rules.daylight_bias)
        # DST starts at a local standard time and ends at a local daylight time
        return dt + (daylight if self._in_daylight(dt, (standard, daylight)) else standard)


def _int(el: ET.Element | None, tag: str, default: int | None = None) -> int:
    child = el.find(t(tag)) if el is not None else None
    if child is None or child.text is None or not child.text.strip():
        if default is not None:
            return default
        raise SoapError(f"TimeZone: missing {tag}")
    try:
        return int(child.text.strip())
    except ValueError:
        raise SoapError(f"TimeZone: {tag} {child.text[:20]!r} is not a number") from None


def _time_of_day(text: str) -> time:
    """``02:00:00`` as most clients write it, but also ``2:00:00`` or ``02:00:00.000`` (.NET's
    ``TimeSpan`` and Windows' SYSTEMTIME allow both)."""
    parts = text.strip().split(":")
    try:
        if len(parts) not in (2, 3):
            raise ValueError
        seconds = float(parts[2]) if len(parts) == 3 else 0.0
        return time(int(parts[0]), int(parts[1]), int(seconds))
    except ValueError:
        raise SoapError(f"TimeZone: bad Time {text[:20]!r}") from None


_DAYS = {name.lower(): index for index, name in enumerate(WEEKDAYS)}


def _read_rule(el: ET.Element | None) -> tuple[int, Rule | None]:
    """A ``StandardTime``/``DaylightTime`` as (its bias, its yearly transition or None).

    The shapes clients send, all read here (see tests/server/test_ews_timezones.py):
    Windows' TIME_ZONE_INFORMATION as Outlook and evolution-ews write it, where ``Month`` 0 (with
    ``DayOrder`` 0) means "this zone has no such transition"; the EWS Managed API's dummy UTC
    rules (both biases 0, March and October) and its fixed-date rules (a ``Year`` and no
    ``DayOfWeek``, ``DayOrder`` then being the day of the month); DavMail's UTC block; and
    ``DayOrder`` -1 for "last" from a few scripts.
    """
    if el is None:
        return 0, None
    bias = _int(el, "Bias", default=0)
    month = _int(el, "Month", default=0)
    if month == 0:
        return bias, None
    if not 1 <= month <= 12:
        raise SoapError(f"TimeZone: Month {month} is not 0 (no transition) or 1-12")
    at = _time_of_day(el.findtext(t("Time")) or "00:00:00")
    order = _int(el, "DayOrder")
    year = _int(el, "Year", default=0)
    if year:
        if not 1 <= order <= 31:
            raise SoapError(f"TimeZone: DayOrder {order} is not a day of the month (a Year is given)")
        return bias, Rule(month, order, 0, at, fixed=True)
    day = (el.findtext(t("DayOfWeek")) or "").strip().lower()
    if day not in _DAYS:
        raise SoapError(f"TimeZone: bad DayOfWeek {day[:20]!r}")
    if order not in (-1, 1, 2, 3, 4, 5):
        raise SoapError(f"TimeZone: DayOrder {order} is not 1-5 (5 = the last)")
    return bias, Rule(month, 5 if order == -1 else order, _DAYS[day], at)


def read_timezone(el: ET.Element) -> ZoneRules:
    """An availability ``t:TimeZone`` element back into :class:`ZoneRules`.

    ``Bias`` follows the documented sign (UTC = local + Bias, so Tokyo is -540 and New York 300);
    ``StandardTime/Bias`` and ``DaylightTime/Bias`` are added to it in their seasons. A zone
    whose two transitions are missing, have Month 0, or share one bias has no daylight saving.
    """
    bias = _int(el, "Bias")
    (std_bias, standard), (dst_bias, daylight) = (_read_rule(el.find(t("StandardTime"))),
                                                  _read_rule(el.find(t("DaylightTime"))))
    if not all(-24 * 60 <= b <= 24 * 60 for b in (bias, bias + std_bias, bias + dst_bias)):
        raise SoapError("TimeZone: Bias out of range (at most 24 hours either way)")
    if standard is None or daylight is None or dst_bias == std_bias:
        return ZoneRules(bias=bias + std_bias)
    return ZoneRules(bias=bias + std_bias, daylight_bias=dst_bias - std_bias,
                     to_standard=standard, to_daylight=daylight)

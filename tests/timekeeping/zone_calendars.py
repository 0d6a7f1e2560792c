"""The smallest calendars that show each way a copy used to move or lose time (issue 13, items 2
to 5), shared by the unit tests, the sync round trips and the property tests of this folder."""

from __future__ import annotations

from dataclasses import dataclass


def calendar(*blocks: str) -> str:
    """A VCALENDAR around ``blocks`` (VTIMEZONE and VEVENT texts), CRLF line ends."""
    body = "\n".join(b.strip() for b in blocks)
    text = f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n{body}\nEND:VCALENDAR\n"
    return text.replace("\n", "\r\n")


@dataclass(frozen=True)
class Rules:
    """A zone as Outlook defines it: standard and daylight offsets (``+0100``) and the yearly
    rules of the changes (month, BYDAY, local hour), or no daylight time at all."""

    standard: str
    daylight: str | None = None
    to_daylight: tuple[int, str, int] = (3, "-1SU", 2)
    to_standard: tuple[int, str, int] = (10, "-1SU", 3)

    def vtimezone(self, tzid: str) -> str:
        if self.daylight is None:
            return (f"BEGIN:VTIMEZONE\nTZID:{tzid}\nBEGIN:STANDARD\nDTSTART:16010101T000000\n"
                    f"TZOFFSETFROM:{self.standard}\nTZOFFSETTO:{self.standard}\nEND:STANDARD\n"
                    "END:VTIMEZONE")
        (dm, dday, dhour), (sm, sday, shour) = self.to_daylight, self.to_standard
        return (f"BEGIN:VTIMEZONE\nTZID:{tzid}\n"
                f"BEGIN:STANDARD\nDTSTART:16010101T{shour:02d}0000\nTZOFFSETFROM:{self.daylight}\n"
                f"TZOFFSETTO:{self.standard}\nRRULE:FREQ=YEARLY;INTERVAL=1;BYDAY={sday};BYMONTH={sm}\n"
                "END:STANDARD\n"
                f"BEGIN:DAYLIGHT\nDTSTART:16010101T{dhour:02d}0000\nTZOFFSETFROM:{self.standard}\n"
                f"TZOFFSETTO:{self.daylight}\nRRULE:FREQ=YEARLY;INTERVAL=1;BYDAY={dday};BYMONTH={dm}\n"
                "END:DAYLIGHT\nEND:VTIMEZONE")


EU = Rules("+0100", "+0200")
US_EASTERN = Rules("-0500", "-0400", (3, "2SU", 2), (11, "1SU", 2))
SYDNEY_SINCE_2008 = Rules("+1000", "+1100", (10, "1SU", 2), (4, "1SU", 3))
JAPAN = Rules("+0900")

WINDOWS_ZONES = {
    # Windows name: (its definition as Outlook writes it, the IANA zone the CLDR table gives)
    "W. Europe Standard Time": (EU, "Europe/Berlin"),
    "Central European Standard Time": (EU, "Europe/Warsaw"),
    "Romance Standard Time": (EU, "Europe/Paris"),
    "Eastern Standard Time": (US_EASTERN, "America/New_York"),
    "AUS Eastern Standard Time": (SYDNEY_SINCE_2008, "Australia/Sydney"),
    "Tokyo Standard Time": (JAPAN, "Asia/Tokyo"),
}


def vevent(uid: str, start: str, end: str | None = None, *, tzid: str | None = None,
           extra: str = "", summary: str | None = None) -> str:
    """A VEVENT; ``start``/``end`` as written (``20250107T090000``), under ``tzid`` if given."""
    param = f';TZID="{tzid}"' if tzid and any(c in tzid for c in ":;,") else (f";TZID={tzid}" if tzid else "")
    lines = [f"BEGIN:VEVENT\nUID:{uid}", "DTSTAMP:20250101T000000Z", f"DTSTART{param}:{start}"]
    if end is not None:
        lines.append(f"DTEND{param}:{end}")
    lines.append(f"SUMMARY:{summary or uid}")
    if extra:
        lines.append(extra.strip())
    lines.append("END:VEVENT")
    return "\n".join(lines)


def customized(uid: str, rules: Rules) -> str:
    """Outlook's export of one weekly meeting in a zone it calls ``Customized Time Zone``."""
    return calendar(rules.vtimezone("Customized Time Zone"),
                    vevent(uid, "20250115T100000", "20250115T110000", tzid="Customized Time Zone",
                           extra="RRULE:FREQ=WEEKLY;COUNT=30"))


OFFICE365_WARSAW = calendar(
    EU.vtimezone("Central European Standard Time"),
    vevent("warsaw-weekly@test", "20250107T090000", "20250107T100000",
           tzid="Central European Standard Time", extra="RRULE:FREQ=WEEKLY;COUNT=50"),
)
"""Office 365's weekly series in Warsaw: 50 Tuesdays at 09:00 local, across two DST changes."""

SYDNEY_OLD_RULES = calendar(
    # Outlook writes today's rules for a series begun in 2001, when Sydney's summer time ended
    # in March: no IANA zone has these offsets in 2001, so the copy must carry the definition
    SYDNEY_SINCE_2008.vtimezone("Customized Sydney"),
    vevent("sydney-2001@test", "20010107T090000", "20010107T100000", tzid="Customized Sydney",
           extra="RRULE:FREQ=WEEKLY;COUNT=30\nEXDATE;TZID=Customized Sydney:20010114T090000"),
)

THIS_AND_FUTURE = calendar(
    vevent("taf@test", "20250303T100000", "20250303T110000", tzid="Europe/Paris",
           extra="RRULE:FREQ=WEEKLY;COUNT=8"),
    vevent("taf@test", "20250317T150000", "20250317T160000", tzid="Europe/Paris",
           extra="RECURRENCE-ID;RANGE=THISANDFUTURE;TZID=Europe/Paris:20250317T100000",
           summary="moved from the 17th on"),
)
"""Weekly at 10:00 from 3 March; from 17 March on at 15:00 (one THISANDFUTURE override)."""

DURATION_ACROSS_DST = calendar(
    vevent("three-hours@test", "20250330T010000", tzid="Europe/Paris", extra="DURATION:PT3H"),
)
"""Three hours from 01:00 on the night Paris clocks go forward: ends at 05:00 local."""

INSTANCE_ACROSS_DST = calendar(
    vevent("night-shift@test", "20250323T003000", "20250323T033000", tzid="Europe/Paris",
           extra="RRULE:FREQ=WEEKLY;COUNT=3"),
)
"""A weekly three-hour night shift; its second instance spans the change of clocks."""

WITH_ALARM = calendar(
    vevent("alarm@test", "20250310T100000", "20250310T110000", tzid="Europe/Paris",
           extra="BEGIN:VALARM\nACTION:DISPLAY\nDESCRIPTION:Dentist\nTRIGGER:-PT15M\nEND:VALARM"),
)

PERIOD_RDATES = calendar(
    vevent("periods@test", "20250301T100000", "20250301T110000", tzid="Europe/Paris",
           extra="RDATE;VALUE=PERIOD;TZID=Europe/Paris:20250305T140000/PT2H,"
                 "20250306T090000/20250306T093000"),
)
"""One event and two more occurrences given as periods: 2 hours on the 5th, 30 minutes on the 6th."""

SYDNEY_SERIES_FROM_2001 = calendar(
    vevent("sydney-iana@test", "20010105T090000", "20010105T100000", tzid="Australia/Sydney",
           extra="RRULE:FREQ=MONTHLY;COUNT=120"),
)
"""Monthly in Sydney for ten years from 2001: its zone's rules changed in 2008."""

ONE_SUMMER = calendar(
    "BEGIN:VTIMEZONE\nTZID:Island time\n"
    "BEGIN:STANDARD\nDTSTART:20000101T000000\nTZOFFSETFROM:+0300\nTZOFFSETTO:+0300\nEND:STANDARD\n"
    "BEGIN:DAYLIGHT\nDTSTART:20250330T020000\nRDATE:20260329T020000\nTZOFFSETFROM:+0300\nTZOFFSETTO:+0400\n"
    "END:DAYLIGHT\n"
    "BEGIN:STANDARD\nDTSTART:20251026T030000\nRDATE:20261025T030000\nTZOFFSETFROM:+0400\nTZOFFSETTO:+0300\n"
    "END:STANDARD\nEND:VTIMEZONE",
    vevent("island@test", "20250105T090000", "20250105T100000", tzid="Island time",
           extra="RRULE:FREQ=MONTHLY;COUNT=36"),
)
"""Summer time (+04:00) in 2025 and 2026 only, as one-off observances (DTSTART and RDATE), then
+03:00 for good; monthly on the 5th at 09:00 for three years."""

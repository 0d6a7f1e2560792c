"""Run by Debian's python3 (python3-gi, gir1.2-ical-3.0): libical reads a VFREEBUSY document from
stdin and prints its busy periods as JSON ``[[start, end, fbtype], ...]``. Also imported by
eds_caldav_freebusy.py, so Evolution's answers are read the same way. Not a test module itself.
"""

import json
import sys

import gi

gi.require_version("ICalGLib", "3.0")
from gi.repository import ICalGLib  # noqa: E402


def periods(vfreebusy: "ICalGLib.Component") -> list[list[str]]:
    """The FREEBUSY periods of one VFREEBUSY, as libical reads them."""
    out = []
    prop = vfreebusy.get_first_property(ICalGLib.PropertyKind.FREEBUSY_PROPERTY)
    while prop is not None:
        period = prop.get_freebusy()
        out.append([period.get_start().as_ical_string(), period.get_end().as_ical_string(),
                    prop.get_parameter_as_string("FBTYPE") or "BUSY"])
        prop = vfreebusy.get_next_property(ICalGLib.PropertyKind.FREEBUSY_PROPERTY)
    return out


def main() -> None:
    calendar = ICalGLib.Component.new_from_string(sys.stdin.read())
    busy = []
    vfreebusy = calendar.get_first_component(ICalGLib.ComponentKind.VFREEBUSY_COMPONENT)
    while vfreebusy is not None:
        busy.extend(periods(vfreebusy))
        vfreebusy = calendar.get_next_component(ICalGLib.ComponentKind.VFREEBUSY_COMPONENT)
    print(json.dumps(busy))


if __name__ == "__main__":
    main()

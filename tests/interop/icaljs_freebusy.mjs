// Run by node: ical.js (the parser Thunderbird's and many web calendars' code base shares) reads
// a calmesh VFREEBUSY document from stdin and prints its busy periods as JSON
// [[start, end, fbtype], ...] in UTC. Argument: the ical.js package's entry file.
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const { default: ICAL } = await import(pathToFileURL(process.argv[2]).href);
const calendar = new ICAL.Component(ICAL.parse(readFileSync(0, "utf-8")));
const busy = [];
for (const vfreebusy of calendar.getAllSubcomponents("vfreebusy")) {
  for (const prop of vfreebusy.getAllProperties("freebusy")) {
    const fbtype = prop.getParameter("fbtype") || "BUSY";
    for (const period of prop.getValues()) {
      const utc = ICAL.Timezone.utcTimezone;
      busy.push([period.start.convertToZone(utc).toICALString(),
                 period.getEnd().convertToZone(utc).toICALString(), fbtype]);
    }
  }
}
console.log(JSON.stringify(busy));

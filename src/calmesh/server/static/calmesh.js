// calmesh web page: view controls, find a time and booking. Vanilla JavaScript, no build step.
// The grid itself is drawn by the server; this only places suggested slots on it, by the same
// rule: a time's position is its share of the span between the grid's data-start and data-end.
(function () {
  "use strict";

  const grid = document.getElementById("grid");
  const viewForm = document.getElementById("view-form");
  if (!grid || !viewForm) return;

  // ---------------------------------------------------------------- view controls
  viewForm.addEventListener("change", (event) => {
    if (event.target.name !== "who") viewForm.requestSubmit();
  });
  const tzSelect = document.getElementById("tz");
  const browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (tzSelect && browserZone && ![...tzSelect.options].some((o) => o.value === browserZone)) {
    tzSelect.querySelector("optgroup").append(new Option(`${browserZone} (this browser)`, browserZone));
  }

  // ---------------------------------------------------------------- helpers
  const axisStart = Date.parse(grid.dataset.start);
  const axisEnd = Date.parse(grid.dataset.end);
  const percent = (t) => Math.max(0, Math.min(100, (100 * (t - axisStart)) / (axisEnd - axisStart)));
  const zone = grid.dataset.tz;
  const fmt = new Intl.DateTimeFormat("en-GB", {
    timeZone: zone, weekday: "short", day: "2-digit", month: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  });
  const hm = new Intl.DateTimeFormat("en-GB", { timeZone: zone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  const span = (start, end) => `${fmt.format(new Date(start))}–${hm.format(new Date(end))}`;

  function element(tag, attrs = {}, text = "") {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    if (text) el.textContent = text;
    return el;
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      credentials: "same-origin",
      body: JSON.stringify(body),
    });
    let data = null;
    try { data = await response.json(); } catch (_) { /* not JSON: reported below */ }
    if (!response.ok) {
      const why = (data && (data.detail || data.title)) || `HTTP ${response.status}`;
      throw new Error(why);
    }
    return data;
  }

  // ---------------------------------------------------------------- find a time
  const findForm = document.getElementById("find-form");
  if (!findForm) return;
  const status = document.getElementById("find-status");
  const slotsRow = document.getElementById("slots-row");
  const slotsLane = document.getElementById("slots-lane");
  const slotList = document.getElementById("slot-list");
  const bookForm = document.getElementById("book-form");
  const bookStatus = document.getElementById("book-status");
  const bookResult = document.getElementById("book-result");
  const picks = () => [...grid.querySelectorAll("input.pick:checked")].map((i) => i.value);
  let chosen = null;
  let organizer = null;
  let lanes = [];

  document.getElementById("pick-all").addEventListener("change", (event) => {
    grid.querySelectorAll("input.pick").forEach((i) => { i.checked = event.target.checked; });
  });

  function clearSlots() {
    grid.querySelectorAll(".slot").forEach((el) => el.remove());
    slotList.replaceChildren();
    bookForm.hidden = true;
    chosen = null;
  }

  function choose(index, suggestion) {
    chosen = suggestion;
    // the chosen slot also goes on each attendee's lane, so it can be checked against their day
    grid.querySelectorAll(".row.person .slot").forEach((el) => el.remove());
    lanes.forEach((lane) => lane.append(slotElement(index, suggestion, "")));
    grid.querySelectorAll(".slot").forEach((el) => el.classList.toggle("chosen", el.dataset.rank === String(index + 1)));
    slotList.querySelectorAll("button").forEach((b, i) => b.classList.toggle("chosen", i === index));
    document.getElementById("book-when").textContent = span(suggestion.start, suggestion.end);
    bookForm.hidden = false;
    document.getElementById("book-title").focus();
  }

  function slotElement(index, suggestion, label) {
    const left = percent(Date.parse(suggestion.start));
    const width = percent(Date.parse(suggestion.end)) - left;
    const el = element("span", {
      class: "slot", "data-rank": String(index + 1), "data-start": suggestion.start, "data-end": suggestion.end,
      title: `Suggestion ${index + 1}: ${span(suggestion.start, suggestion.end)}`, style: `left:${left}%;width:${width}%`,
    }, label);
    el.addEventListener("click", () => choose(index, suggestion));
    return el;
  }

  function describe(suggestion) {
    const notFree = (suggestion.attendees || []).filter((a) => a.availability !== "free");
    const who = notFree.length ? notFree.map((a) => `${a.email} ${a.availability}`).join(", ") : "everyone free";
    return `${span(suggestion.start, suggestion.end)} · ${Math.round(suggestion.confidence)}% · ${who}`;
  }

  findForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearSlots();
    organizer = document.getElementById("organizer").value;
    const required = picks().filter((e) => e !== organizer);
    const duration = Number(document.getElementById("duration").value);
    const halfHour = 30 * 60 * 1000;
    const from = Math.max(axisStart, Math.ceil(Date.now() / halfHour) * halfHour);
    if (from >= axisEnd) { status.textContent = "These days are over: move the grid to today or later."; return; }
    const start = new Date(from).toISOString();
    status.textContent = "Searching…";
    document.getElementById("find-button").disabled = true;
    try {
      const data = await post("/api/v1/find-time", { organizer, required, duration, start, end: grid.dataset.end });
      const suggestions = data.suggestions || [];
      if (!suggestions.length) {
        status.textContent = `No common time: ${data.empty_reason || "nobody is free together in these days"}.`;
        return;
      }
      status.textContent = `${suggestions.length} suggestion(s), best first. Pick one to book it.`;
      slotsRow.hidden = false;
      lanes = [organizer, ...required]
        .map((e) => grid.querySelector(`.row.person[data-email="${CSS.escape(e)}"] .lane`))
        .filter(Boolean);
      // overlapping suggestions go on separate tracks of the lane, so each stays clickable
      const trackEnds = [];
      const tracks = [];
      const byStart = suggestions.map((s, i) => i).sort((a, b) => Date.parse(suggestions[a].start) - Date.parse(suggestions[b].start));
      for (const i of byStart) {
        const start = Date.parse(suggestions[i].start);
        let track = trackEnds.findIndex((end) => end <= start);
        if (track < 0) { track = trackEnds.length; trackEnds.push(0); }
        trackEnds[track] = Date.parse(suggestions[i].end);
        tracks[i] = track;
      }
      slotsLane.style.height = `${Math.max(1, trackEnds.length) * 1.3}rem`;
      suggestions.forEach((s, i) => {
        const el = slotElement(i, s, String(i + 1));
        el.style.top = `${(100 * tracks[i]) / trackEnds.length}%`;
        el.style.bottom = "auto";
        el.style.height = `${100 / trackEnds.length}%`;
        slotsLane.append(el);
        const item = element("li");
        const button = element("button", { type: "button", "data-rank": String(i + 1) }, describe(s));
        button.addEventListener("click", () => choose(i, s));
        item.append(button);
        slotList.append(item);
      });
      document.getElementById("book-attendees").value = [organizer, ...required].join("\n");
    } catch (error) {
      status.textContent = `Could not search: ${error.message}`;
    } finally {
      document.getElementById("find-button").disabled = false;
    }
  });

  // ---------------------------------------------------------------- booking
  bookForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!chosen) return;
    const attendees = document.getElementById("book-attendees").value.split(/[\s,;]+/).filter(Boolean);
    const required = attendees.filter((e) => e.toLowerCase() !== organizer);
    const summary = document.getElementById("book-title").value.trim();
    bookStatus.textContent = "Booking…";
    document.getElementById("book-button").disabled = true;
    bookResult.replaceChildren();
    try {
      const duration = Math.round((Date.parse(chosen.end) - Date.parse(chosen.start)) / 60000);
      const data = await post("/api/v1/book", { organizer, required, start: chosen.start, duration, summary });
      bookStatus.textContent = "";
      const box = element("div", { class: "result-ok", "data-uid": data.uid || "" });
      box.append(element("p", {}, `Booked “${summary}”, ${span(chosen.start, chosen.end)}.`));
      const list = element("ul");
      for (const d of data.deliveries || []) {
        const where = d.platform ? ` on ${d.platform}` : "";
        const line = `${d.email}: ${d.method}${where}${d.detail ? ` (${d.detail})` : ""}`;
        list.append(element("li", { class: d.method === "failed" ? "bad" : "" }, line));
      }
      box.append(list);
      for (const w of data.warnings || []) box.append(element("p", { class: "bad" }, w));
      const again = element("a", { href: window.location.href, id: "show-booked" }, "Show it on the grid");
      box.append(again);
      bookResult.append(box);
      bookForm.hidden = true;
    } catch (error) {
      bookStatus.textContent = "";
      bookResult.append(element("div", { class: "result-bad" }, `Not booked: ${error.message}`));
    } finally {
      document.getElementById("book-button").disabled = false;
    }
  });
})();

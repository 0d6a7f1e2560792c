// calmesh web page: view controls, find a time, booking, and moving or cancelling a booking.
// Vanilla JavaScript, no build step. The grid itself is drawn by the server; this only places
// suggested slots on it, by the same rule: the grid shows the spans of data-segments laid end to
// end (a week in working hours leaves the nights out), and a time's position is the share of the
// shown time before it.
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
  const segments = JSON.parse(grid.dataset.segments).map(([s, e]) => [Date.parse(s), Date.parse(e)]);
  const shownTime = segments.reduce((sum, [s, e]) => sum + (e - s), 0);
  const axisStart = segments[0][0];
  const axisEnd = segments[segments.length - 1][1];
  const percent = (t) => {
    let before = 0;
    for (const [s, e] of segments) {
      if (t <= s) break;
      before += Math.min(t, e) - s;
    }
    return (100 * before) / shownTime;
  };
  const shown = (start, end) => segments.some(([s, e]) => start < e && end > s);
  const zone = grid.dataset.tz;
  // the page's language (the locale the server chose: [hub] locale, else the browser's)
  const lang = document.documentElement.lang || "en-GB";
  const fmt = new Intl.DateTimeFormat(lang, {
    timeZone: zone, weekday: "short", day: "2-digit", month: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  });
  const hm = new Intl.DateTimeFormat(lang, { timeZone: zone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  const span = (start, end) => `${fmt.format(new Date(start))}–${hm.format(new Date(end))}`;

  function element(tag, attrs = {}, text = "") {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    if (text) el.textContent = text;
    return el;
  }

  async function send(url, body, method = "POST") {
    const response = await fetch(url, {
      method,
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

  // A label is shown whole, or cut after a whole word with "…", or not at all (the block keeps
  // its full text as tooltip and accessible name): never a stub such as "S" or "Sp".
  function fitLabels(root) {
    root.querySelectorAll(".block .label").forEach((label) => {
      const full = label.dataset.full || label.textContent;
      label.dataset.full = full;
      label.textContent = full;
      label.hidden = false;
      if (label.scrollWidth <= label.clientWidth + 1) return;
      const words = full.split(/\s+/);
      while (words.length > 1) {
        words.pop();
        label.textContent = `${words.join(" ")}…`;
        if (label.scrollWidth <= label.clientWidth + 1) return;
      }
      label.hidden = true;
    });
  }
  fitLabels(grid);
  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => fitLabels(grid), 150);
  });

  // After a booking, move or cancellation: the grid, its notes and the bookings list are read
  // again from the server (which forgot its cached answers for the people concerned).
  async function refresh(box) {
    try {
      await reread();
    } catch (error) {
      box.append(element("p", { class: "bad" }, `${error.message}: reload the page to see it.`));
    }
  }

  async function reread() {
    const response = await fetch(window.location.href, { credentials: "same-origin", cache: "no-store" });
    if (!response.ok) throw new Error(`the grid could not be read again (HTTP ${response.status})`);
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    const picked = new Set(picks());
    for (const id of ["grid-rows", "meta", "bookings"]) {
      const now = document.getElementById(id);
      const next = fresh.getElementById(id);
      if (now && next) now.replaceWith(document.adoptNode(next));
    }
    grid.querySelectorAll("input.pick").forEach((i) => { i.checked = picked.has(i.value); });
    fitLabels(grid);
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
  const bookButton = document.getElementById("book-button");
  const stopMoving = document.getElementById("stop-moving");
  const picks = () => [...grid.querySelectorAll("input.pick:checked")].map((i) => i.value);
  let chosen = null;
  let organizer = null;
  let moving = null; // the booking being moved: {uid, organizer, summary, attendees}

  document.getElementById("pick-all").addEventListener("change", (event) => {
    grid.querySelectorAll("input.pick").forEach((i) => { i.checked = event.target.checked; });
  });

  function clearSlots() {
    grid.querySelectorAll(".slot").forEach((el) => el.remove());
    slotList.replaceChildren();
    slotsRow.hidden = true;
    bookForm.hidden = true;
    chosen = null;
  }

  function setMoving(booking) {
    moving = booking;
    bookForm.classList.toggle("moving", Boolean(booking));
    bookForm.querySelectorAll(".new-only input, .new-only textarea").forEach((el) => { el.disabled = Boolean(booking); });
    document.getElementById("book-verb").textContent = booking ? `Move “${booking.summary}” to` : "Book";
    bookButton.textContent = booking ? "Move" : "Book";
    stopMoving.hidden = !booking;
  }

  function lanesOf(emails) {
    return emails.map((e) => grid.querySelector(`.row.person[data-email="${CSS.escape(e)}"] .lane`)).filter(Boolean);
  }

  function choose(index, suggestion, people) {
    chosen = suggestion;
    // the chosen slot also goes on each attendee's lane, so it can be checked against their day
    grid.querySelectorAll(".row.person .slot").forEach((el) => el.remove());
    for (const lane of lanesOf(people)) {
      const left = percent(Date.parse(suggestion.start));
      const width = percent(Date.parse(suggestion.end)) - left;
      lane.append(element("span", {
        class: "slot chosen", "data-rank": String(index + 1), "data-start": suggestion.start, "data-end": suggestion.end,
        title: `Suggestion ${index + 1}: ${span(suggestion.start, suggestion.end)}`, style: `left:${left}%;width:${width}%`,
      }));
    }
    slotsLane.querySelectorAll(".slot").forEach((el) => el.classList.toggle("chosen", el.dataset.rank === String(index + 1)));
    slotList.querySelectorAll("button").forEach((b, i) => b.classList.toggle("chosen", i === index));
    document.getElementById("book-when").textContent = span(suggestion.start, suggestion.end);
    bookForm.hidden = false;
    (moving ? bookButton : document.getElementById("book-title")).focus();
  }

  function describe(suggestion) {
    const notFree = (suggestion.attendees || []).filter((a) => a.availability !== "free");
    const who = notFree.length ? notFree.map((a) => `${a.email} ${a.availability}`).join(", ") : "everyone free";
    return `${Math.round(suggestion.confidence)}% · ${who}`;
  }

  // One mark per suggestion on the Suggested row: its time as a bar with its rank in a badge
  // wide enough to read. Marks that would touch (in pixels, not minutes) go on separate tracks.
  function drawMarks(suggestions, people) {
    const laneWidth = slotsLane.getBoundingClientRect().width;
    const badge = 26;
    const trackEnds = [];
    const order = suggestions.map((s, i) => i).sort((a, b) => Date.parse(suggestions[a].start) - Date.parse(suggestions[b].start));
    for (const i of order) {
      const s = suggestions[i];
      const start = Date.parse(s.start);
      const end = Date.parse(s.end);
      const left = percent(start);
      const width = percent(end) - left;
      const from = (laneWidth * left) / 100;
      const to = from + Math.max((laneWidth * width) / 100, badge) + 3;
      let track = trackEnds.findIndex((edge) => edge <= from);
      if (track < 0) { track = trackEnds.length; trackEnds.push(0); }
      trackEnds[track] = to;
      const outside = !shown(start, end);
      const mark = element("span", {
        class: `slot mark${outside ? " outside" : ""}`, "data-rank": String(i + 1), "data-start": s.start, "data-end": s.end,
        role: "button", tabindex: "0",
        title: `Suggestion ${i + 1}: ${span(s.start, s.end)}${outside ? " (outside the hours shown)" : ""}`,
        style: `left:${left}%;width:${width}%;top:${0.25 + 1.6 * track}rem`,
      });
      mark.append(element("span", { class: "rank" }, String(i + 1)));
      mark.addEventListener("click", () => choose(i, s, people));
      mark.addEventListener("keydown", (event) => { if (event.key === "Enter" || event.key === " ") choose(i, s, people); });
      slotsLane.append(mark);
    }
    slotsLane.style.minHeight = `${0.5 + 1.6 * Math.max(1, trackEnds.length)}rem`;
  }

  async function search(organizerEmail, required, duration) {
    clearSlots();
    organizer = organizerEmail;
    const halfHour = 30 * 60 * 1000;
    const from = Math.max(axisStart, Math.ceil(Date.now() / halfHour) * halfHour);
    if (from >= axisEnd) { status.textContent = "These days are over: move the grid to today or later."; return; }
    status.textContent = "Searching…";
    document.getElementById("find-button").disabled = true;
    try {
      const data = await send("/api/v1/find-time", {
        organizer, required, duration, start: new Date(from).toISOString(), end: grid.dataset.end,
      });
      const suggestions = data.suggestions || [];
      if (!suggestions.length) {
        status.textContent = `No common time: ${data.empty_reason || "nobody is free together in these days"}.`;
        return;
      }
      status.textContent = `${suggestions.length} suggestion(s), best first. Pick one to ${moving ? "move the meeting there" : "book it"}.`;
      slotsRow.hidden = false;
      const people = [organizer, ...required];
      suggestions.forEach((s, i) => {
        const item = element("li");
        const outside = !shown(Date.parse(s.start), Date.parse(s.end));
        const button = element("button", { type: "button", "data-rank": String(i + 1), title: describe(s) });
        button.append(element("span", { class: "rank" }, String(i + 1)),
          element("span", { class: "when" }, span(s.start, s.end)),
          element("span", { class: "why" }, `${describe(s)}${outside ? " · outside the hours shown" : ""}`));
        button.addEventListener("click", () => choose(i, s, people));
        item.append(button);
        slotList.append(item);
      });
      drawMarks(suggestions, people);
      document.getElementById("book-attendees").value = people.join("\n");
    } catch (error) {
      status.textContent = `Could not search: ${error.message}`;
    } finally {
      document.getElementById("find-button").disabled = false;
    }
  }

  findForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosenOrganizer = document.getElementById("organizer").value;
    if (moving && moving.organizer !== chosenOrganizer) setMoving(null);
    const required = moving ? moving.attendees : picks().filter((e) => e !== chosenOrganizer);
    search(chosenOrganizer, required, Number(document.getElementById("duration").value));
  });

  // ---------------------------------------------------------------- booking and moving
  function report(box, data, text) {
    box.append(element("p", {}, text));
    const list = element("ul");
    for (const d of data.deliveries || []) {
      const where = d.platform ? ` on ${d.platform}` : "";
      const owed = d.owed ? "; calmesh writes it there once the platform answers" : "";
      const line = `${d.email}: ${d.method}${where}${d.detail ? ` (${d.detail}${owed})` : ""}`;
      list.append(element("li", { class: d.method === "failed" ? "bad" : "" }, line));
    }
    box.append(list);
    for (const w of data.warnings || []) box.append(element("p", { class: "bad" }, w));
    // what a calendar holds another way than asked (a sync run reports the same)
    for (const n of data.notices || []) box.append(element("p", { class: "notice" }, n));
  }

  bookForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!chosen) return;
    const slot = chosen;
    bookStatus.textContent = moving ? "Moving…" : "Booking…";
    bookButton.disabled = true;
    bookResult.replaceChildren();
    try {
      let data;
      let text;
      if (moving) {
        data = await send(`/api/v1/bookings/${encodeURIComponent(moving.uid)}`,
          { organizer: moving.organizer, start: slot.start, end: slot.end }, "PATCH");
        text = `Moved “${moving.summary}” to ${span(slot.start, slot.end)}.`;
      } else {
        const attendees = document.getElementById("book-attendees").value.split(/[\s,;]+/).filter(Boolean);
        const required = attendees.filter((e) => e.toLowerCase() !== organizer);
        const summary = document.getElementById("book-title").value.trim();
        const duration = Math.round((Date.parse(slot.end) - Date.parse(slot.start)) / 60000);
        data = await send("/api/v1/book", { organizer, required, start: slot.start, duration, summary });
        text = `Booked “${summary}”, ${span(slot.start, slot.end)}.`;
      }
      bookStatus.textContent = "";
      const box = element("div", { class: "result-ok", "data-uid": data.uid || "" });
      report(box, data, text);
      setMoving(null);
      clearSlots();
      status.textContent = "";
      await refresh(box);
      // the new or moved meeting, as the grid now shows it
      grid.querySelectorAll(".block").forEach((b) => {
        b.classList.toggle("fresh", Date.parse(b.dataset.start) === Date.parse(slot.start));
      });
      bookResult.append(box);
    } catch (error) {
      bookStatus.textContent = "";
      bookResult.append(element("div", { class: "result-bad" }, `Not done: ${error.message}`));
    } finally {
      bookButton.disabled = false;
    }
  });

  stopMoving.addEventListener("click", () => { setMoving(null); clearSlots(); status.textContent = ""; });

  // ---------------------------------------------------------------- the bookings list
  // (delegated: the list is replaced whenever the grid is read again)
  const bookingOf = (el) => {
    const li = el.closest("li.booking");
    return li && {
      li, uid: li.dataset.uid, organizer: li.dataset.organizer, summary: li.dataset.summary || "Meeting",
      attendees: (li.dataset.attendees || "").split(" ").filter(Boolean),
      minutes: Math.round((Date.parse(li.dataset.end) - Date.parse(li.dataset.start)) / 60000),
    };
  };

  document.addEventListener("click", (event) => {
    const target = event.target;
    if (!(target instanceof Element)) return;
    const block = target.closest(".block.booked");
    if (block) {
      const entry = document.querySelector(`#bookings li.booking[data-uid="${CSS.escape(block.dataset.uid)}"]`);
      if (entry) { entry.scrollIntoView({ block: "center" }); entry.querySelector(".move-booking").focus(); }
      return;
    }
    const booking = bookingOf(target);
    if (!booking) return;
    if (target.classList.contains("move-booking")) {
      setMoving(booking);
      document.getElementById("organizer").value = booking.organizer;
      const duration = document.getElementById("duration");
      if (![...duration.options].some((o) => o.value === String(booking.minutes))) {
        duration.append(new Option(`${booking.minutes} min`, String(booking.minutes)));
      }
      duration.value = String(booking.minutes);
      grid.querySelectorAll("input.pick").forEach((i) => {
        i.checked = i.value === booking.organizer || booking.attendees.includes(i.value);
      });
      document.getElementById("find-time").scrollIntoView({ block: "start" });
      search(booking.organizer, booking.attendees, booking.minutes);
    } else if (target.classList.contains("cancel-booking")) {
      booking.li.querySelector(".cancel-form").hidden = false;
      booking.li.querySelector(".cancel-form input").focus();
    } else if (target.classList.contains("keep")) {
      booking.li.querySelector(".cancel-form").hidden = true;
    }
  });

  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.classList.contains("cancel-form")) return;
    event.preventDefault();
    const booking = bookingOf(form);
    const line = booking.li.querySelector(".status");
    line.textContent = "Cancelling…";
    form.querySelector("button[type=submit]").disabled = true;
    try {
      const reason = form.querySelector("input").value.trim();
      const data = await send(`/api/v1/bookings/${encodeURIComponent(booking.uid)}/cancel`,
        reason ? { organizer: booking.organizer, reason } : { organizer: booking.organizer });
      const box = element("div", { class: "result-ok", "data-uid": booking.uid });
      report(box, data, `Cancelled “${booking.summary}”.`);
      if (moving && moving.uid === booking.uid) { setMoving(null); clearSlots(); }
      await refresh(box);
      bookResult.replaceChildren(box);
    } catch (error) {
      line.textContent = `Not cancelled: ${error.message}`;
      form.querySelector("button[type=submit]").disabled = false;
    }
  });
})();

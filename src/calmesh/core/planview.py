"""A sync plan as an operator reads it: one row per action, saying what, from where to where, and why.

``calmesh sync --dry-run`` prints these rows (a table, or JSON with ``--format json``), so a plan
can be judged item by item before anything is written, not from counts. Pure: the rows come from
the plan, the stored state and the items the run read.

Titles are shown only where whoever reads the output may see them: never for a busy-mode group
(its placeholders exist to hide what the time is for) and never for an event marked
CLASS:PRIVATE or CONFIDENTIAL; those rows name the event by its UID.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from calmesh.core.projection import SyncMode
from calmesh.core.syncplan import Conflict, Create, Delete, ItemState, Plan, Skip, Update
from calmesh.model import CalendarItem


@dataclass(frozen=True, slots=True)
class ActionRow:
    action: str
    """``create``, ``update``, ``delete``, ``conflict`` or ``skip``."""
    what: str
    """The event's title, or its UID where the title may not be shown (see module docstring)."""
    uid: str | None
    source: str | None
    """The member the decision comes from (whose version is written, where the item is gone)."""
    target: str | None
    """The member written to (for a conflict: the winner; for a skip: the member concerned)."""
    reason: str
    logical_id: str

    def as_dict(self) -> dict[str, str | None]:
        return {"action": self.action, "what": self.what, "uid": self.uid, "from": self.source,
                "to": self.target, "why": self.reason, "logical_id": self.logical_id}


def describe(plan: Plan, state: Mapping[str, ItemState], read: Mapping[tuple[str, str], CalendarItem],
             mode: SyncMode) -> list[ActionRow]:
    """Every action of ``plan`` (writes, conflicts, skips) in plan order."""
    written = {a.logical_id: a.item for a in plan.actions if isinstance(a, Create | Update)}
    rows: list[ActionRow] = []
    for action in plan.actions:
        lid = action.logical_id
        if isinstance(action, Create | Update):
            rows.append(_row(type(action).__name__.lower(), action.item, action.item.uid, mode, action.source,
                             action.target, action.reason, lid))
        elif isinstance(action, Delete):
            item = read.get((action.target, action.ref.id))
            copy = state[lid].copies.get(action.target) if lid in state else None
            uid = item.uid if item is not None else copy.uid if copy is not None else None
            rows.append(_row("delete", item, uid, mode, action.source, action.target, action.reason, lid))
        elif isinstance(action, Conflict):
            item = written.get(lid) or _known(lid, state, read)
            rows.append(_row("conflict", item, _uid(lid, state, item), mode, ", ".join(action.members),
                             action.winner, action.resolution, lid))
        elif isinstance(action, Skip):
            item = written.get(lid) or _known(lid, state, read)
            rows.append(_row("skip", item, _uid(lid, state, item), mode, None, action.member, action.reason, lid))
    return rows


def _row(action: str, item: CalendarItem | None, uid: str | None, mode: SyncMode, source: str | None,
         target: str | None, reason: str, lid: str) -> ActionRow:
    return ActionRow(action, _what(item, uid, mode) or lid, uid, source, target, reason, lid)


def _what(item: CalendarItem | None, uid: str | None, mode: SyncMode) -> str | None:
    if item is None or item.master is None or mode == "busy" or any(e.private for e in item.components):
        return uid
    return item.master.summary or uid


def _known(lid: str, state: Mapping[str, ItemState], read: Mapping[tuple[str, str], CalendarItem]) -> CalendarItem | None:
    """Some copy of ``lid`` this run read, if any."""
    record = state.get(lid)
    if record is None:
        return None
    for key, copy in record.copies.items():
        if (found := read.get((key, copy.item_id))) is not None:
            return found
    return None


def _uid(lid: str, state: Mapping[str, ItemState], item: CalendarItem | None) -> str | None:
    if item is not None:
        return item.uid
    record = state.get(lid)
    return next((c.uid for c in record.copies.values()), None) if record is not None else None

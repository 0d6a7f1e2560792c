"""Drive :func:`calmesh.core.syncplan.plan` against in-memory platforms, following the engine
contract in the syncplan docstring (re-plan on ``needs_listing``, batches persisted only when
all their writes succeed). State lives in a dict, so the planner is tested apart from the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from calmesh.connectors.base import ConnectorError, InvalidTokenError, TransientError
from calmesh.core.syncplan import (
    Delete,
    DeleteHistory,
    Hold,
    ItemState,
    Member,
    Observation,
    Plan,
    PlanOptions,
    Update,
    plan,
)

from .memory_connector import MemoryConnector


@dataclass
class World:
    members: list[Member]
    platforms: dict[str, MemoryConnector]
    options: PlanOptions = PlanOptions()
    state: dict[str, ItemState] = field(default_factory=dict)
    tokens: dict[str, str | None] = field(default_factory=dict)
    full: bool = True
    """Observe by full listing (True) or by change tokens (False)."""
    holds: dict[str, Hold] = field(default_factory=dict)
    """The guard's holds, kept between runs as the store keeps them."""
    deletions: list[dict[str, int]] = field(default_factory=list)
    """Deletions made per member, one entry per run (the guard's window is the last ``window``)."""
    window: int = 5

    def observe(self, member: Member, complete: bool) -> Observation:
        conn = self.platforms[member.platform]
        try:
            if complete:
                return Observation(member.key, conn.items(member.calendar)[0], complete=True)
            try:
                changes = conn.changes(member.calendar, self.tokens.get(member.key))
            except InvalidTokenError:
                changes = conn.changes(member.calendar, None)
            self.tokens[member.key + "#next"] = changes.token
            return Observation.from_changes(member.key, changes)
        except TransientError:
            return Observation.unreachable(member.key)

    def plan(self) -> Plan:
        self.tokens = {k: v for k, v in self.tokens.items() if not k.endswith("#next")}
        obs = {m.key: self.observe(m, self.full) for m in self.members}
        recent: dict[str, int] = {}
        for run in self.deletions[-self.window:]:
            for key, n in run.items():
                recent[key] = recent.get(key, 0) + n
        history = DeleteHistory(self.holds, recent)
        result = plan(self.members, self.state, obs, self.options, history)
        if result.incomplete:  # items whose content is needed: listing their members yields it
            for m in self.members:
                if m.key in result.needs_listing or m.key in result.needs_items:
                    obs[m.key] = self.observe(m, True)
            result = plan(self.members, self.state, obs, self.options, history)
            assert not result.incomplete, (result.needs_listing, result.needs_items)
        return result

    def run(self, *, stop_after_writes: int | None = None) -> Plan:
        """One sync run; ``stop_after_writes`` simulates a kill after that many writes."""
        result = self.plan()
        done = 0
        deleted: dict[str, int] = {}
        self.deletions.append(deleted)
        by_key = {m.key: m for m in self.members}
        for batch in result.batches:
            ok = True
            for action in batch.writes:
                if stop_after_writes is not None and done >= stop_after_writes:
                    return result
                member = by_key[action.target]
                conn = self.platforms[member.platform]
                try:
                    if isinstance(action, Delete):
                        conn.delete(member.calendar, action.ref, action.ref.etag)
                        batch.succeeded(action)
                        deleted[action.target] = deleted.get(action.target, 0) + 1
                    else:
                        if_match = action.ref.etag if isinstance(action, Update) else None
                        batch.succeeded(action, conn.put(member.calendar, action.item, if_match))
                except ConnectorError:
                    ok = False
                    break
                done += 1
            records = batch.records.values() if ok else batch.after_failure(self.state)
            self.state.update((r.logical_id, r) for r in records)
        self.holds = dict(result.holds)
        for m in self.members:  # a held member's token stays before the evidence
            if m.key + "#next" in self.tokens and m.key not in result.holds:
                self.tokens[m.key] = self.tokens.pop(m.key + "#next")
        return result


def members(*specs: str) -> list[Member]:
    """``"a"``, ``"b:in"``, ``"c:out"`` -> members on platform NAME, calendar ``cal``."""
    out = []
    for spec in specs:
        name, _, direction = spec.partition(":")
        out.append(Member(name, "cal", direction or "both"))  # type: ignore[arg-type]
    return out


def world(*specs: str, options: PlanOptions = PlanOptions(), full: bool = True) -> World:
    ms = members(*specs)
    return World(ms, {m.platform: MemoryConnector(m.platform) for m in ms}, options, full=full)


def uids(conn: MemoryConnector) -> list[str]:
    return sorted(i.uid for i in conn.all())


def summaries(conn: MemoryConnector) -> list[str | None]:
    return sorted((i.components[0].summary for i in conn.all()), key=str)


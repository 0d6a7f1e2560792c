"""The people directory: who lives on which platform and calendars, and who is in which team.

Lookups are by normalised email. ``team:NAME`` and ``*`` selectors are how grants and the CLI
name groups of people without listing them.
"""

from __future__ import annotations

from collections.abc import Iterable

from calmesh.config import Config, PersonConfig
from calmesh.model import normalize_email


class UnknownPerson(LookupError):
    def __init__(self, email: str) -> None:
        self.email = email
        super().__init__(f"{email} is not in the people directory")


class Directory:
    def __init__(self, config: Config) -> None:
        self._people = {p.email: p for p in config.people}
        self.default_zone = config.hub.timezone

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._people.values())

    def __len__(self) -> int:
        return len(self._people)

    def __contains__(self, email: object) -> bool:
        return isinstance(email, str) and normalize_email(email) in self._people

    def get(self, email: str) -> PersonConfig:
        try:
            return self._people[normalize_email(email)]
        except KeyError:
            raise UnknownPerson(email) from None

    def find(self, email: str) -> PersonConfig | None:
        return self._people.get(normalize_email(email))

    def select(self, selectors: Iterable[str]) -> list[PersonConfig]:
        """People matching emails, ``team:NAME``, ``platform:NAME`` or ``*`` (order kept, no repeats)."""
        out: dict[str, PersonConfig] = {}
        for selector in selectors:
            selector = selector.strip()
            if selector == "*":
                out.update(self._people)
            elif selector.startswith("team:"):
                team = selector[5:].lower()
                out.update({e: p for e, p in self._people.items() if (p.team or "").lower() == team})
            elif selector.startswith("platform:"):
                name = selector[9:]
                out.update({e: p for e, p in self._people.items() if p.platform == name})
            else:
                person = self.get(selector)
                out[person.email] = person
        return list(out.values())

    def zone_of(self, email: str) -> str:
        person = self.find(email)
        return (person.timezone if person and person.timezone else None) or self.default_zone

    def matches(self, email: str, selectors: Iterable[str]) -> bool:
        email = normalize_email(email)
        person = self.find(email)
        for selector in selectors:
            if selector == "*" or normalize_email(selector) == email:
                return True
            if person and selector.startswith("team:") and (person.team or "").lower() == selector[5:].lower():
                return True
        return False

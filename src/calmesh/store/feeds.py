"""Secret, revocable free/busy and feed URLs (issue with ``calmesh feeds issue``).

Calendar clients subscribe by URL and cannot send credentials reliably (Outlook's Internet
Free/Busy search path, Google's "from URL", Zoho's subscriptions), so the URL itself carries a
secret: ``/freebusy/<token>/<email>.vfb`` and ``/feeds/<token>/<email>.ics``. A token shows one
person's free/busy (or everyone's, for a subscriber such as an organisation's Outlook search
path: ``*``), never details. Only its SHA-256 digest is stored: the state store's contents do not
open the URLs, and revoking deletes the row.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from calmesh.model import normalize_email
from calmesh.store.models import FeedToken
from calmesh.store.repository import Clock, _aware

EVERYONE = "*"
TOKEN_BYTES = 24
"""192 random bits, 32 URL-safe characters."""


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class FeedGrant:
    """One issued URL, as listed (the token itself is shown once, when issued)."""

    id: int
    person: str
    label: str | None
    created_at: datetime

    def covers(self, email: str) -> bool:
        return self.person in (EVERYONE, normalize_email(email))


def _grant(row: FeedToken) -> FeedGrant:
    return FeedGrant(row.id, row.person, row.label, _aware(row.created_at) or row.created_at)


class FeedTokens:
    def __init__(self, sessions: sessionmaker[Session], clock: Clock = lambda: datetime.now(UTC)) -> None:
        self._sessions = sessions
        self._now = clock

    def issue(self, person: str, label: str | None = None) -> tuple[FeedGrant, str]:
        """A new token for ``person`` (an email, or ``*``): the grant and the token, which is
        not kept and cannot be shown again."""
        token = secrets.token_urlsafe(TOKEN_BYTES)
        who = person if person == EVERYONE else normalize_email(person)
        with self._sessions.begin() as session:
            row = FeedToken(digest=digest(token), person=who, label=label, created_at=self._now())
            session.add(row)
            session.flush()
            return _grant(row), token

    def find(self, token: str) -> FeedGrant | None:
        """The grant of ``token``, or None (unknown or revoked): one indexed query either way."""
        with self._sessions() as session:
            row = session.scalars(select(FeedToken).where(FeedToken.digest == digest(token))).one_or_none()
            return _grant(row) if row else None

    def grants(self, person: str | None = None) -> list[FeedGrant]:
        query = select(FeedToken).order_by(FeedToken.id)
        if person is not None:
            query = query.where(FeedToken.person == (person if person == EVERYONE else normalize_email(person)))
        with self._sessions() as session:
            return [_grant(r) for r in session.scalars(query)]

    def revoke(self, ids: list[int] | None = None, person: str | None = None) -> int:
        """Delete the grants with these ids, or every grant of ``person``; how many were deleted."""
        query = delete(FeedToken)
        if ids is not None:
            query = query.where(FeedToken.id.in_(ids))
        elif person is not None:
            query = query.where(FeedToken.person == (person if person == EVERYONE else normalize_email(person)))
        else:
            raise ValueError("revoke needs ids or a person")
        with self._sessions.begin() as session:
            return int(session.execute(query).rowcount)  # type: ignore[attr-defined]

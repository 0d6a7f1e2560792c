"""What a door may say when a platform fails: which platform is missing, in plain words.

A connector's error carries its technical cause (``REPORT http://10.0.0.5:8080/dav/pia/:
unreachable (HTTPConnectionPool(...))``): the operator needs it, an Outlook user or a feed
subscriber must not see it (it maps the network and the software behind calmesh). So every door
of the server answers with :func:`public_text` of an error, ``exchange: did not answer``, and the
cause goes to the server's log (:func:`log_failures`, once per fan-out) and to the monitoring
details of ``/healthz``. The CLI, run by the operator on the hub's own machine, keeps showing the
whole cause.

Only whole-platform failures are rewritten here (a problem without ``unknown`` time: a platform,
calendar or mailbox that could not be read). Problems about one item (an event that could not be
read) are rendered per asker by their own rules.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from calmesh.connectors.base import (
    AuthenticationError,
    ConnectorError,
    NotFoundError,
    PreconditionFailed,
    UnsupportedOperation,
)
from calmesh.model import Problem

log = logging.getLogger(__name__)

DIRECTORY = "directory"
"""Problems of the people directory ("x is not in the people directory") are already plain words
about what the asker sent: they are shown as they are."""
_WORDS = {"state": "the state store could not be read"}
"""Plain words for the hub's own parts that are not platforms."""
NOT_ANSWERED = "did not answer"
_KINDS: tuple[tuple[type[ConnectorError], str], ...] = (
    (AuthenticationError, "refused calmesh's credentials"),
    (NotFoundError, "does not have that calendar or item"),
    (PreconditionFailed, "holds a newer version of the item"),
    (UnsupportedOperation, "cannot do this (read-only or not supported)"),
)
"""Words for what a write (booking, moving, cancelling) ran into, where the kind of failure is
known and tells the asker what to do; anything else "did not answer"."""


def is_platform_failure(problem: Problem) -> bool:
    """A platform, calendar or mailbox that could not be read as a whole (its time is unknown)."""
    return problem.unknown is None and problem.platform != DIRECTORY


def public_problem(error: Problem | ConnectorError) -> Problem:
    """``error`` as every asker may read it: the platform's name and that it did not answer; no
    URL, address, exception or server message. The one place such text is made."""
    if isinstance(error, ConnectorError):
        words = next((w for kind, w in _KINDS if isinstance(error, kind)), NOT_ANSWERED)
        return Problem(error.platform, words)
    if not is_platform_failure(error):
        return error
    return Problem(error.platform, _WORDS.get(error.platform, NOT_ANSWERED))


def public_text(error: Problem | ConnectorError) -> str:
    """The public words of one error (``exchange: did not answer``)."""
    return str(public_problem(error))


def publicise(problems: Iterable[Problem]) -> list[Problem]:
    """``problems`` with each platform failure replaced by its public words, each text once."""
    return list(dict.fromkeys(public_problem(p) for p in problems))


def log_failures(problems: Iterable[Problem], doing: str) -> None:
    """Log the technical cause of each distinct platform failure among ``problems``, once: called
    where a door's answer is made (one fan-out), not where it is shown, so that the log holds one
    line per failure however many people or answers it touches."""
    for text in dict.fromkeys(str(p) for p in problems if is_platform_failure(p)):
        log.warning("%s: %s", doing, text)

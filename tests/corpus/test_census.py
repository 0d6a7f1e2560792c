"""Corpus census: how far calmesh agrees with the reference over the whole corpus, and which
files the reference cannot read (with its reason), so that nothing left out is hidden.

Run with ``-s`` to see the table; the test fails only if calmesh raises on a file."""

from __future__ import annotations

import pytest

from .expansion import compare
from .known import EXPLAINED, ISSUE_13
from .sources import corpus


@pytest.mark.slow
def test_corpus_census() -> None:
    files = events = windows = agreed = occurrences = 0
    unreadable: list[str] = []
    raised: list[str] = []
    for file in corpus():
        data = file.data()
        result = compare(data)
        files += 1
        events += data.count(b"BEGIN:VEVENT")
        windows += result.windows
        agreed += result.agreed
        occurrences += result.occurrences
        if result.calmesh_error:
            raised.append(f"{file.id}: {result.calmesh_error}")
        if result.reference_error:
            unreadable.append(f"  {file.id}: {result.reference_error[:150]}")
        if result.not_compared:
            unreadable.append(f"  {file.id}: {result.not_compared}")
    rate = agreed / windows if windows else 1.0
    print(f"\ncorpus: {files} files, {events} events, {windows} windows compared, {occurrences} "
          f"reference occurrences; agreement {agreed}/{windows} = {rate:.1%}; "
          f"{len(EXPLAINED)} files explained, {len(ISSUE_13)} issue 13 files")
    print(f"files not compared: the reference cannot read them, or by choice ({len(unreadable)}):",
          *unreadable, sep="\n")
    assert not raised, "\n".join(raised)

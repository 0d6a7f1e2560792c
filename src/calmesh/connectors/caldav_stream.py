"""A WebDAV multistatus body read as it arrives, in pages of a few hundred ``<response>`` elements.

A first listing of a 10,000-object calendar with the objects inline is one 7.5 MB document; read
whole (as ``caldav.DAVClient`` reads every answer), its bytes, its lxml tree and every object's
text are held at once. Here the body is fed to lxml's pull parser chunk by chunk: each complete
``<response>`` is moved out of the growing document into a small page, a page is handed to the
caller's reader (the ``caldav`` library's own multistatus parsing, so hrefs and statuses read the
same as everywhere else) and dropped, and the document never holds more than the page being read.

Hostile or broken XML is refused with :class:`UnreadableAnswer`: a document type declaration
(where entity tricks live: "billion laughs", external entities) is refused outright, as
``defusedxml`` does; entities are never resolved nor anything fetched from the network; lxml's
default limits stay on (no ``huge_tree``: one text node of at most 10 MB, nesting of at most 256
levels), whereas the whole document may be of any size, since it is never held.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from lxml import etree

_DAV = "{DAV:}"
_MULTISTATUS = _DAV + "multistatus"
_RESPONSE = _DAV + "response"
_SYNC_TOKEN = _DAV + "sync-token"
_STATUS = _DAV + "status"
_PROPSTAT = _DAV + "propstat"
PAGE = 200
"""``<response>`` elements per page: large enough that the per-page cost vanishes, small enough
that a page of objects (about 150 KB of calendar text) is nothing next to a whole calendar."""

P = TypeVar("P")


class UnreadableAnswer(ValueError):
    """The body is not a harmless multistatus document (the message says why)."""


class MalformedAnswer(UnreadableAnswer):
    """The body is not well-formed XML (a server's glitch may be; asking again may help)."""


class OversizedAnswer(UnreadableAnswer):
    """The body passes lxml's default limits (an object of over 10 MB inline, or nesting deeper
    than 256 levels): not read here, where the document's size is unbounded; the caller lists the
    objects, then fetches them by multiget (read whole, without those limits)."""


def _held_for_last(response: etree._Element) -> bool:
    """The RFC 6578 3.6 truncation marker (a bare 507 ``<response>``): its reader recognises it by
    the ``sync-token`` beside it, which comes with the last page."""
    status = response.find(_STATUS)
    return status is not None and " 507" in (status.text or "") and response.find(_PROPSTAT) is None


def read_multistatus(chunks: Iterable[bytes], read_page: Callable[[etree._Element], P]) -> Iterator[P]:
    """``read_page`` of each page of the multistatus document in ``chunks``: a ``<multistatus>``
    element holding up to :data:`PAGE` of the document's ``<response>`` elements; the last page
    also holds its ``<sync-token>`` and truncation marker (RFC 6578), and is read even if empty.
    Other top-level elements are dropped. Raises :class:`UnreadableAnswer`."""
    parser = etree.XMLPullParser(events=("end",), resolve_entities=False, no_network=True, load_dtd=False,
                                 remove_blank_text=True, huge_tree=False)
    root: etree._Element | None = None
    page = etree.Element(_MULTISTATUS)
    last: list[etree._Element] = []

    def complete(events: Iterable[tuple[str, etree._Element]]) -> Iterator[etree._Element]:
        """Each finished child of the document's root, taken out of the document."""
        nonlocal root
        for _event, element in events:
            if root is None:
                root = element.getroottree().getroot()
                if element.getroottree().docinfo.doctype:
                    raise UnreadableAnswer("the answer declares a document type (refused: entities)")
                if root.tag != _MULTISTATUS:
                    raise UnreadableAnswer(f"expected a DAV:multistatus, got {root.tag}")
            if element.getparent() is root:
                root.remove(element)
                yield element

    try:
        for chunk in chunks:
            parser.feed(chunk)
            for element in complete(parser.read_events()):
                if element.tag == _RESPONSE and not _held_for_last(element):
                    page.append(element)
                    if len(page) >= PAGE:
                        yield read_page(page)
                        page = etree.Element(_MULTISTATUS)
                elif element.tag in (_RESPONSE, _SYNC_TOKEN):
                    last.append(element)
        parser.close()
        last.extend(complete(parser.read_events()))
    except etree.XMLSyntaxError as exc:
        if "XML_PARSE_HUGE" in str(exc):
            raise OversizedAnswer(f"over the streamed reader's limits ({exc})") from exc
        raise MalformedAnswer(f"malformed XML ({exc})") from exc
    page.extend(last)
    yield read_page(page)

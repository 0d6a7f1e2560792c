"""The WebDAV layer of the CalDAV door: XML names, PROPFIND bodies, multistatus and error answers.

It knows RFC 4918 and nothing of calendars: :mod:`.principals` says which properties each
resource has, :mod:`.scheduling` what a POST to an outbox answers.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from starlette.responses import Response

from calmesh.server.context import BadRequest
from calmesh.server.ews_soap import SoapError, parse_xml

DAV = "DAV:"
CALDAV = "urn:ietf:params:xml:ns:caldav"
CALSERVER = "http://calendarserver.org/ns/"
ET.register_namespace("D", DAV)
ET.register_namespace("C", CALDAV)
ET.register_namespace("CS", CALSERVER)
XML = "application/xml; charset=utf-8"

Filler = Callable[[ET.Element], None]
"""Writes one property's value into its (already created) element."""


def d(name: str) -> str:
    return f"{{{DAV}}}{name}"


def c(name: str) -> str:
    return f"{{{CALDAV}}}{name}"


def cs(name: str) -> str:
    return f"{{{CALSERVER}}}{name}"


def xml_response(root: ET.Element, status: int = 207, headers: Mapping[str, str] | None = None) -> Response:
    return Response(ET.tostring(root, encoding="utf-8", xml_declaration=True), status_code=status,
                    media_type=XML, headers=dict(headers or {}))


def dav_error(condition: str, detail: str, status: int = 400) -> Response:
    """A ``DAV:error`` body naming the failed precondition (RFC 4918 16; ``condition`` is a
    qualified name such as ``c("valid-calendar-data")``), with a readable reason."""
    root = ET.Element(d("error"))
    ET.SubElement(root, condition)
    ET.SubElement(root, d("responsedescription")).text = detail
    return xml_response(root, status)


def href(parent: ET.Element, url: str) -> None:
    ET.SubElement(parent, d("href")).text = url


@dataclass(frozen=True, slots=True)
class PropfindRequest:
    """What a PROPFIND body asks (RFC 4918 9.1): named properties, ``allprop`` or ``propname``."""

    names: tuple[str, ...] = ()
    allprop: bool = False
    propname: bool = False


def parse_propfind(body: bytes) -> PropfindRequest:
    """The request a PROPFIND body makes; an empty body is ``allprop`` (RFC 4918 9.1)."""
    if not body.strip():
        return PropfindRequest(allprop=True)
    try:
        root = parse_xml(body)
    except SoapError as exc:
        raise BadRequest(f"PROPFIND body: {exc}") from None
    if root.tag != d("propfind"):
        raise BadRequest("a PROPFIND body is a DAV:propfind element")
    if root.find(d("propname")) is not None:
        return PropfindRequest(propname=True)
    if root.find(d("allprop")) is not None:
        return PropfindRequest(allprop=True)
    prop = root.find(d("prop"))
    if prop is None:
        raise BadRequest("a DAV:propfind holds DAV:prop, DAV:allprop or DAV:propname")
    return PropfindRequest(names=tuple(child.tag for child in prop))


def multistatus(resources: Sequence[tuple[str, Mapping[str, Filler]]], request: PropfindRequest) -> Response:
    """A 207 answer for ``(href, properties)`` pairs: each asked property the resource has in a
    200 propstat, each it has not in a 404 propstat, nothing else (RFC 4918 9.1)."""
    root = ET.Element(d("multistatus"))
    for url, props in resources:
        response = ET.SubElement(root, d("response"))
        href(response, url)
        found, missing = ET.Element(d("prop")), ET.Element(d("prop"))
        names = list(props) if request.allprop or request.propname else request.names
        for name in names:
            filler = props.get(name)
            if filler is None:
                ET.SubElement(missing, name)
                continue
            element = ET.SubElement(found, name)
            if not request.propname:
                filler(element)
        for container, status in ((found, "HTTP/1.1 200 OK"), (missing, "HTTP/1.1 404 Not Found")):
            if len(container):
                propstat = ET.SubElement(response, d("propstat"))
                propstat.append(container)
                ET.SubElement(propstat, d("status")).text = status
    return xml_response(root)

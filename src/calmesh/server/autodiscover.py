"""Autodiscover: how Exchange, Outlook and EWS clients find calmesh's EWS availability endpoint.

An Exchange organisation that adds calmesh as an availability address space
(``Add-AvailabilityAddressSpace -ForestName <domain> -TargetAutodiscoverEpr ...``) asks the SOAP
Autodiscover service (``/autodiscover/autodiscover.svc``, ``GetUserSettings``) for the EWS URL of
the people it looks up; Outlook and older clients ask the POX service
(``/autodiscover/autodiscover.xml``). Both answer with calmesh's ``/EWS/Exchange.asmx`` for
people in the directory, and "invalid user" for anyone else. Both need a login, like every door.

The URL handed out is built from ``server.public_url``, never from the request's ``Host`` header,
which any client can set (a forged one would send an organisation's availability queries, with
their credentials, elsewhere). Without ``public_url`` both services answer with an error saying
so, and the server warns at start.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from calmesh.model import normalize_email
from calmesh.server.context import ServerContext
from calmesh.server.ews import PATH as EWS_PATH
from calmesh.server.ews import challenge
from calmesh.server.ews_soap import (
    DEFAULT_API_VERSION,
    SERVER_BUILD,
    SOAP,
    SoapError,
    parse_envelope,
    parse_xml,
    sub,
)

SOAP_PATH = "/autodiscover/autodiscover.svc"
POX_PATH = "/autodiscover/autodiscover.xml"
PATHS = (SOAP_PATH, POX_PATH)
A = "http://schemas.microsoft.com/exchange/2010/Autodiscover"
WSA = "http://www.w3.org/2005/08/addressing"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
POX_REQUEST = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
POX_RESPONSE = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
POX_OUTLOOK = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
ET.register_namespace("a", A)
ET.register_namespace("wsa", WSA)
_XML = "text/xml; charset=utf-8"


def a(name: str) -> str:
    return f"{{{A}}}{name}"


NO_PUBLIC_URL = ("autodiscover is turned off on this calmesh server: its administrator must set "
                 "server.public_url (the URL clients reach it at)")


def _user_settings(ctx: ServerContext, url: str, email: str, wanted: list[str]) -> ET.Element:
    response = ET.Element(a("UserResponse"))
    person = ctx.hub.directory.find(email)
    if person is None:
        sub(response, a("ErrorCode"), "InvalidUser")
        sub(response, a("ErrorMessage"), f"{email[:100]} is not in the calmesh directory")
        return response
    known = {"UserDisplayName": person.name or person.email, "AutoDiscoverSMTPAddress": person.email,
             "ExternalEwsUrl": url, "InternalEwsUrl": url, "EwsSupportedSchemas": DEFAULT_API_VERSION,
             "CasVersion": "{MajorVersion}.{MinorVersion}.{MajorBuildNumber}.{MinorBuildNumber}".format(**SERVER_BUILD)}
    sub(response, a("ErrorCode"), "NoError")
    sub(response, a("ErrorMessage"), "No error.")
    sub(response, a("RedirectTarget"), **{f"{{{XSI}}}nil": "true"})
    errors, settings = sub(response, a("UserSettingErrors")), sub(response, a("UserSettings"))
    for name in wanted:
        if name in known:
            setting = sub(settings, a("UserSetting"), **{f"{{{XSI}}}type": "StringSetting"})
            sub(setting, a("Name"), name)
            sub(setting, a("Value"), known[name])
        else:
            error = sub(errors, a("UserSettingError"))
            sub(error, a("ErrorCode"), "SettingIsNotAvailable")
            sub(error, a("ErrorMessage"), "calmesh only serves free/busy")
            sub(error, a("SettingName"), name)
    return response


def _soap_answer(body: ET.Element) -> bytes:
    root = ET.Element(f"{{{SOAP}}}Envelope")
    header = sub(root, f"{{{SOAP}}}Header")
    sub(header, f"{{{WSA}}}Action",
        "http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettingsResponse")
    info = sub(header, a("ServerVersionInfo"))
    for name, value in (*SERVER_BUILD.items(), ("Version", DEFAULT_API_VERSION)):
        sub(info, a(name), value)
    sub(root, f"{{{SOAP}}}Body").append(body)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _soap_error(code: str, message: str, status: int = 400) -> Response:
    out = ET.Element(a("GetUserSettingsResponseMessage"))
    response = sub(out, a("Response"))
    sub(response, a("ErrorCode"), code)
    sub(response, a("ErrorMessage"), message)
    return Response(_soap_answer(out), status_code=status, media_type=_XML)


def _pox_error(code: str, message: str, status: int = 200) -> Response:
    root = ET.Element(f"{{{POX_RESPONSE}}}Autodiscover")
    response = sub(root, f"{{{POX_RESPONSE}}}Response")
    error = sub(response, f"{{{POX_RESPONSE}}}Error", Id="0", Time="00:00:00")
    sub(error, f"{{{POX_RESPONSE}}}ErrorCode", code)
    sub(error, f"{{{POX_RESPONSE}}}Message", message)
    sub(error, f"{{{POX_RESPONSE}}}DebugData")
    return Response(ET.tostring(root, encoding="utf-8", xml_declaration=True), status_code=status,
                    media_type=_XML)


def _pox(ctx: ServerContext, url: str, body: bytes) -> Response:
    try:
        env_root = parse_xml(body)
    except SoapError as exc:
        return Response(str(exc), status_code=400, media_type="text/plain")
    email = normalize_email(env_root.findtext(f"{{{POX_REQUEST}}}Request/{{{POX_REQUEST}}}EMailAddress") or "")
    person = ctx.hub.directory.find(email) if email else None
    if person is None:
        return _pox_error("500", "The e-mail address cannot be found.")
    root = ET.Element(f"{{{POX_RESPONSE}}}Autodiscover")
    response = sub(root, f"{{{POX_OUTLOOK}}}Response")
    user = sub(response, f"{{{POX_OUTLOOK}}}User")
    sub(user, f"{{{POX_OUTLOOK}}}DisplayName", person.name or person.email)
    sub(user, f"{{{POX_OUTLOOK}}}AutoDiscoverSMTPAddress", person.email)
    account = sub(response, f"{{{POX_OUTLOOK}}}Account")
    sub(account, f"{{{POX_OUTLOOK}}}AccountType", "email")
    sub(account, f"{{{POX_OUTLOOK}}}Action", "settings")
    for kind in ("EXCH", "EXPR"):
        protocol = sub(account, f"{{{POX_OUTLOOK}}}Protocol")
        sub(protocol, f"{{{POX_OUTLOOK}}}Type", kind)
        sub(protocol, f"{{{POX_OUTLOOK}}}ASUrl", url)
        sub(protocol, f"{{{POX_OUTLOOK}}}EwsUrl", url)
    return Response(ET.tostring(root, encoding="utf-8", xml_declaration=True), media_type=_XML)


def routes(ctx: ServerContext) -> list[BaseRoute]:
    public_url = ctx.config.server.public_url
    url = public_url + EWS_PATH if public_url else None

    async def soap(request: Request) -> Response:
        if ctx.user(request) is None:
            return challenge()
        if url is None:
            return _soap_error("InternalServerError", NO_PUBLIC_URL, status=503)
        try:
            env = parse_envelope(await request.body())
        except SoapError as exc:
            return _soap_error("InvalidRequest", str(exc))
        if env.name != "GetUserSettingsRequestMessage":
            return _soap_error("InvalidRequest", f"calmesh answers GetUserSettings only, not {env.name[:60]}")
        req = env.operation.find(a("Request"))
        if req is None:
            return _soap_error("InvalidRequest", "GetUserSettingsRequestMessage has no Request")
        mailboxes = [normalize_email(m.text or "") for m in req.iter(a("Mailbox"))]
        wanted = [(s.text or "").strip() for s in req.iter(a("Setting"))]
        if not mailboxes or len(mailboxes) > 100:
            return _soap_error("InvalidRequest", "ask for 1 to 100 users")
        out = ET.Element(a("GetUserSettingsResponseMessage"))
        response = sub(out, a("Response"))
        sub(response, a("ErrorCode"), "NoError")
        sub(response, a("ErrorMessage"))
        users = sub(response, a("UserResponses"))
        for email in mailboxes:
            users.append(_user_settings(ctx, url, email, wanted))
        return Response(_soap_answer(out), media_type=_XML)

    async def pox(request: Request) -> Response:
        if ctx.user(request) is None:
            return challenge()
        if url is None:
            return _pox_error("503", NO_PUBLIC_URL, status=503)
        return _pox(ctx, url, await request.body())

    return [Route(SOAP_PATH, soap, methods=["POST"]), Route(POX_PATH, pox, methods=["POST"])]

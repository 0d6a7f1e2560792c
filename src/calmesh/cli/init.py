"""``calmesh init``: ask for one platform's address and credentials, discover its calendars
through its own connector and write a config to start from.

Discovery is each platform's own listing: CalDAV the account's calendar home set, EWS the
mailbox's calendar folders, Microsoft Graph ``GET /users/{mailbox}/calendars`` for each mailbox
named (an app registration signs in as itself: there is no ``/me``), Google ``calendarList`` as
the service account, or as each person named (domain-wide delegation).

The secret itself is never written: the config names the environment variable holding it
(``password_env``, ``client_secret_env``, ``credentials_env``), as every other config does.
Calendars whose owner is an address become people; the others are listed for the user to assign.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from calmesh.cli.app import app, fail, say

KINDS = ("caldav", "ews", "graph", "google", "ics")
ADDRESS = {"caldav": "url", "ews": "service_endpoint", "ics": "path"}
"""The setting holding each kind's address, asked for. Graph and Google have fixed addresses:
``--url`` and ``--token-url`` change them (a national cloud; a test double)."""
SECRET = {"caldav": ("password_env", "the password"), "ews": ("password_env", "the password"),
          "graph": ("client_secret_env", "the app registration's client secret"),
          "google": ("credentials_env", "the service account's JSON key (or its path)")}
"""The setting naming the environment variable that holds each kind's secret, and what it is."""


def _toml(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string or list is valid TOML


def render(name: str, settings: dict[str, Any], calendars: list[tuple[str, str, str | None]], zone: str) -> str:
    """The config text: hub, the platform, one person per calendar owned by an address."""
    lines = ["# written by `calmesh init`; see docs/configuration.md", "[hub]", f"timezone = {_toml(zone)}", "",
             f"[platforms.{name}]", *(f"{key} = {_toml(value)}" for key, value in settings.items() if value)]
    owners: dict[str, list[tuple[str, str]]] = {}
    others = []
    for cal_id, cal_name, owner in calendars:
        if owner and "@" in owner and not owner.startswith(("http:", "https:", "/")):
            owners.setdefault(owner.removeprefix("mailto:").lower(), []).append((cal_id, cal_name))
        else:
            others.append((cal_id, cal_name))
    for email, owned in owners.items():
        lines += ["", "[[people]]", f"email = {_toml(email)}", f"platform = {_toml(name)}",
                  f"calendars = {_toml([i for i, _ in owned])}   # {', '.join(n for _, n in owned)}"]
    if others:
        lines += ["", "# Calendars found whose owner has no address: give each to a person, e.g.",
                  "# [[people]]", '# email = "someone@example.org"', f"# platform = {_toml(name)}"]
        lines += [f"# calendars = [{_toml(cal_id)}]   # {cal_name}" for cal_id, cal_name in others]
    return "\n".join(lines) + "\n"


def _addresses(text: str) -> list[str]:
    return [a.strip().lower() for a in text.replace(";", ",").split(",") if a.strip()]


@app.command()
def init(
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the config.")] = Path("calmesh.toml"),
    name: Annotated[str | None, typer.Option(help="A name for the platform (e.g. zoho).")] = None,
    kind: Annotated[str | None, typer.Option(help="caldav, ews, graph, google or ics.")] = None,
    url: Annotated[str | None, typer.Option(help="CalDAV URL, EWS endpoint or ICS folder (Graph, Google: the "
                                                  "API address, when not the vendor's usual one).")] = None,
    username: Annotated[str | None, typer.Option(help="Account to log in as (CalDAV, EWS).")] = None,
    password_env: Annotated[str | None, typer.Option(help="Environment variable holding the password (Graph: the "
                                                          "client secret; Google: the service account key).")] = None,
    tenant_id: Annotated[str | None, typer.Option(help="Graph: the directory (tenant) id.")] = None,
    client_id: Annotated[str | None, typer.Option(help="Graph: the application (client) id.")] = None,
    mailbox: Annotated[list[str] | None, typer.Option(help="Graph, Google: a person whose calendars to list "
                                                           "(repeatable).")] = None,
    token_url: Annotated[str | None, typer.Option(help="Graph, Google: the OAuth token endpoint, when not "
                                                       "the vendor's usual one.")] = None,
    timezone: Annotated[str, typer.Option(help="The hub's default time zone.")] = "UTC",
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Ask for a platform's address and credentials, list its calendars and write a config."""
    from calmesh.cli.errors import error_line
    from calmesh.connectors import registry

    if output.exists() and not force:
        fail(f"{output} exists; pass --force to overwrite it, or --output to write elsewhere", 2)
    kind = kind or typer.prompt(f"Platform kind ({', '.join(KINDS)})", default="caldav")
    if kind not in KINDS:
        fail(f"unknown kind {kind!r} (use {', '.join(KINDS)})", 2)
    name = name or typer.prompt("Platform name", default=kind)
    settings: dict[str, Any] = {"kind": kind}
    if kind in ADDRESS:
        settings[ADDRESS[kind]] = url or typer.prompt(f"{ADDRESS[kind]} (address of the {kind} server)")
    elif url:
        settings["base_url"] = url
    if kind in ("caldav", "ews"):
        settings["username"] = username or typer.prompt("User name")
    if kind == "graph":
        settings["tenant_id"] = tenant_id or typer.prompt("Directory (tenant) id")
        settings["client_id"] = client_id or typer.prompt("Application (client) id")
    if kind in SECRET:
        setting, what = SECRET[kind]
        default = f"{name.upper().replace('-', '_')}_{'PASSWORD' if setting == 'password_env' else 'SECRET'}"
        settings[setting] = password_env or typer.prompt(f"Environment variable holding {what}", default=default)
    if kind == "ews":
        settings["auth"] = "basic"
    if kind in ("graph", "google"):
        if token_url:
            settings["token_url"] = token_url
        asked = _addresses(",".join(mailbox)) if mailbox is not None else _addresses(typer.prompt(
            "Addresses of the people whose calendars to list, separated by commas"
            + (" (none: the service account's own calendar list)" if kind == "google" else ""),
            default="" if kind == "google" else None, show_default=False))
        if kind == "graph" and not asked:
            fail("Graph needs at least one mailbox to list (an app registration has no calendars of its own): "
                 "pass --mailbox", 2)
        settings["mailboxes"] = asked
        if kind == "google" and asked:
            settings["impersonate"] = True  # domain-wide delegation: each person's list, acting as them
    try:
        with registry.create(name, {**settings, "base_dir": str(output.resolve().parent)}) as connector:
            found = connector.calendars()
    except Exception as exc:  # noqa: BLE001 - any failure: one line, the config is not written
        fail(error_line(None, exc) or f"cannot list the calendars of {name}: {type(exc).__name__}", 1)
    output.write_text(render(name, settings, [(c.id, c.name, c.owner) for c in found], timezone), encoding="utf-8")
    say(f"{name}: {len(found)} calendar(s): " + ", ".join(c.name for c in found))
    say(f"wrote {output}; next: calmesh check -c {output}")

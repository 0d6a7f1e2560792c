"""``calmesh feeds issue|list|revoke``: secret, revocable free/busy and feed URLs.

For calendar clients that subscribe by URL and cannot log in (Outlook's Internet Free/Busy,
Google's and Zoho's calendar subscriptions). Each URL shows one person's free/busy, or everyone's
(``--everyone``, for a subscriber such as an organisation's Outlook search path), never titles.
The token is printed once, when issued; the state store keeps only its digest.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from calmesh.cli.app import ConfigOption, app, console, fail, get_config

if TYPE_CHECKING:
    from calmesh.config import Config
    from calmesh.store.feeds import FeedTokens

feeds = typer.Typer(help="Secret, revocable free/busy and feed URLs for subscribers that cannot log in.",
                    no_args_is_help=True)
app.add_typer(feeds, name="feeds")


def _tokens(cfg: Config) -> FeedTokens:
    from calmesh.store.db import StoreError, open_store
    from calmesh.store.feeds import FeedTokens

    try:
        return FeedTokens(open_store(cfg.state_url()))
    except StoreError as exc:
        fail(str(exc), 2)


def _base(cfg: Config) -> str:
    """Where subscribers reach calmesh: ``server.public_url``, else the address it listens on."""
    return cfg.server.public_url or f"http://{cfg.server.host}:{cfg.server.port}"


@feeds.command("issue")
def issue(
    person: Annotated[str | None, typer.Argument(help="The person's email (omit with --everyone).")] = None,
    everyone: Annotated[bool, typer.Option("--everyone", help="One URL template for every person.")] = False,
    label: Annotated[str | None, typer.Option(help="Who gets the URL (shown by list).")] = None,
    config: ConfigOption = None,
) -> None:
    """Issue a secret URL and print it (once: it cannot be shown again)."""
    from calmesh.directory import Directory, UnknownPerson
    from calmesh.store.feeds import EVERYONE

    cfg = get_config(config)
    if everyone == (person is not None):
        fail("give a person's email or --everyone (not both)")
    if person is not None:
        try:
            person = Directory(cfg).get(person).email
        except UnknownPerson as exc:
            fail(escape(str(exc)))
    grant, token = _tokens(cfg).issue(person or EVERYONE, label)
    who = person or "%NAME%@%SERVER%"
    base = _base(cfg)
    console.print(f"issued URL #{grant.id} for {escape(grant.person)}"
                  + (f" ({escape(label)})" if label else "") + "; the token is shown only now:", highlight=False)
    console.print(f"  free/busy:  {base}/freebusy/{token}/{who}.vfb", highlight=False, soft_wrap=True)
    console.print(f"  busy feed:  {base}/feeds/{token}/{who}.ics", highlight=False, soft_wrap=True)
    if everyone:
        console.print("  (Outlook fills in %NAME%@%SERVER%; others put the person's email there)", highlight=False)


@feeds.command("list")
def list_(
    person: Annotated[str | None, typer.Option(help="Only this person's URLs.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    config: ConfigOption = None,
) -> None:
    """The URLs issued (without their tokens): id, person, label, when."""
    grants = _tokens(get_config(config)).grants(person)
    if as_json:
        typer.echo(json.dumps([{"id": g.id, "person": g.person, "label": g.label,
                                "created": g.created_at.isoformat()} for g in grants], indent=2))
        return
    if not grants:
        console.print("no feed URLs issued")
        return
    table = Table("id", "person", "label", "issued")
    for g in grants:
        table.add_row(str(g.id), escape(g.person), escape(g.label or ""), g.created_at.strftime("%Y-%m-%d %H:%M"))
    console.print(table)


@feeds.command("revoke")
def revoke(
    ids: Annotated[list[int] | None, typer.Argument(help="Ids shown by `calmesh feeds list`.")] = None,
    person: Annotated[str | None, typer.Option(help="Revoke every URL of this person ('*': the --everyone ones).")]
    = None,
    config: ConfigOption = None,
) -> None:
    """Revoke URLs at once: they answer 404 from the next request."""
    if bool(ids) == (person is not None):
        fail("give the ids to revoke or --person (not both)")
    count = _tokens(get_config(config)).revoke(ids or None, person)
    if ids and count < len(ids):
        fail(f"revoked {count} of {len(ids)}: the others are not issued URLs (see `calmesh feeds list`)")
    console.print(f"revoked {count} URL{'s' if count != 1 else ''}", highlight=False)

"""``calmesh check``: validate the config, reach every platform, say what works on each."""

from __future__ import annotations

import concurrent.futures as cf
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from calmesh.cli.app import ConfigOption, app, console, get_config

if TYPE_CHECKING:
    from calmesh.services.hub import Hub


def _check_one(hub: Hub, platform: str) -> tuple[bool, list[str]]:
    from calmesh.config import ConfigError
    from calmesh.connectors.base import ConnectorError

    try:
        connector = hub.connector(platform)
        return True, connector.check()
    except (ConnectorError, ConfigError) as exc:
        return False, [str(exc)]
    except Exception as exc:  # noqa: BLE001 - report any failure of one platform, check the others
        return False, [f"unexpected error: {exc!r}"]


@app.command()
def check(config: ConfigOption = None) -> None:
    """Validate the config file and reach every configured platform."""
    from calmesh.services.hub import Hub

    cfg = get_config(config)
    console.print(f"[green]✓[/] config {cfg.path}: {len(cfg.platforms)} platform(s), {len(cfg.people)} people, "
                  f"{len(cfg.sync.groups)} sync group(s)")
    table = Table("Platform", "Kind", "Status", "Details")
    failed = 0
    with Hub(cfg) as hub, cf.ThreadPoolExecutor(max_workers=max(1, len(cfg.platforms))) as pool:
        futures = {name: pool.submit(_check_one, hub, name) for name in cfg.platforms}
        for name, future in futures.items():
            ok, lines = future.result()
            failed += not ok
            people = sum(1 for p in cfg.people if any(s.platform == name for s in p.sources))
            table.add_row(name, cfg.platforms[name]["kind"], "[green]ok[/]" if ok else "[red]failed[/]",
                          "\n".join([*lines, f"{people} person(s) in the directory"]))
    console.print(table)
    if failed:
        raise typer.Exit(1)

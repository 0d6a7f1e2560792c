"""How the CLI words a failure: one line naming the platform, the cause in plain words and the
setting to fix; never a traceback, never a library's text.

The connectors already reduce transport failures to plain causes
(:func:`calmesh.connectors.base.plain_cause`) and say which setting is to blame
(``ConnectorError.setting``, carried on to ``Problem.setting``); this module is where the CLI turns
that into a line, the only place it does. The server doors word their answers themselves and do
not show settings.

:class:`CalmeshGroup` is the Typer group of the ``calmesh`` application: whatever escapes a
command ends as one such line and an exit code, under ``python -m``, the console script and
Typer's test runner alike. ``CALMESH_DEBUG=1`` lets an unexpected error show its traceback.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, NoReturn

from typer.core import TyperGroup

if TYPE_CHECKING:
    from calmesh.config import Config
    from calmesh.model import Problem


def fix_hint(platform: str, setting: str | None) -> str:
    """``"check platforms.zoho.url"`` for the setting(s) a connector blamed, or ``""``."""
    if not setting:
        return ""
    names = [name.strip() for name in setting.split(",") if name.strip()]
    return "check " + " and ".join(f"platforms.{platform}.{name}" for name in names)


def platform_label(cfg: Config | None, platform: str) -> str:
    """``"exchange (ews)"``: the platform's name in the config and its kind."""
    kind = cfg.platforms.get(platform, {}).get("kind") if cfg is not None else None
    return f"{platform} ({kind})" if kind else platform


def problem_line(cfg: Config | None, problem: Problem) -> str:
    """A problem as the CLI prints it. A problem that blames a setting concerns the whole
    platform, so the calendar it happened on (often a long URL or an internal id) is left out."""
    where = platform_label(cfg, problem.platform)
    hint = fix_hint(problem.platform, problem.setting)
    if hint:
        return f"{where}: {problem.message}; {hint}"
    item = f"{problem.item}: " if problem.item else ""
    return f"{where}: {item}{problem.message}"


def error_line(cfg: Config | None, exc: BaseException) -> str | None:
    """A connector or config error as one line; None for anything else (a bug)."""
    from calmesh.config import ConfigError

    if isinstance(exc, ConfigError):
        return str(exc)
    from calmesh.connectors.base import ConnectorError

    if isinstance(exc, ConnectorError):
        return problem_line(cfg, exc.problem())
    return None


def _fail(message: str, code: int) -> NoReturn:
    from calmesh.cli.app import fail

    fail(message, code)


class CalmeshGroup(TyperGroup):
    """Runs a command; a platform or config error that escapes it becomes one line (exit 1, 2 for
    the config), anything else one line asking for a bug report (exit 70, EX_SOFTWARE)."""

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        """The command, its options' values named in words (``--person PERSON``): Typer would
        print their Python types (``--person <list[str]>``) in ``--help`` and usage errors."""
        command = super().get_command(ctx, cmd_name)
        for param in getattr(command, "params", ()):
            if param.metavar is not None or (param.param_type_name == "option" and param.is_flag):
                continue
            longest = max(param.opts, key=len).lstrip("-") if param.param_type_name == "option" else param.name
            param.metavar = (longest or "value").upper().replace("-", "_")
        return command

    def invoke(self, ctx: Any) -> Any:  # a Click context (Typer vendors Click: its class is private)
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except Exception as exc:
            # Typer's and Click's own exits and usage errors (Typer vendors Click, so by module).
            if type(exc).__module__.startswith(("typer.", "click.")) or os.environ.get("CALMESH_DEBUG"):
                raise
            from calmesh.config import ConfigError

            line = error_line(None, exc)
            if line is not None:
                _fail(line, 2 if isinstance(exc, ConfigError) else 1)
            _fail(f"internal error ({type(exc).__name__}): a calmesh bug; run again with CALMESH_DEBUG=1 "
                  "for the traceback and report it", 70)

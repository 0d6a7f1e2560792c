"""Placeholder while the door is written."""

from __future__ import annotations

from starlette.routing import BaseRoute

from calmesh.server.context import ServerContext


def routes(ctx: ServerContext) -> list[BaseRoute]:
    return []

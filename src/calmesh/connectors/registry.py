"""Connector kinds: the built-in ones, and plugins registered under the ``calmesh.connectors``
entry-point group (see ``examples/plugin``), the way Radicale loads storage and auth plugins.

Built-ins are imported lazily so that, say, the ICS connector works without exchangelib loaded;
validating a config reads only their settings models (:mod:`calmesh.connectors.settings`).
"""

from __future__ import annotations

import importlib
import importlib.util
from importlib.metadata import entry_points
from typing import Any

from calmesh.connectors.base import Connector, ConnectorSettings

BUILTIN: dict[str, str] = {
    "caldav": "calmesh.connectors.caldav:CalDAVConnector",
    "ics": "calmesh.connectors.ics:ICSConnector",
    "ews": "calmesh.connectors.ews:EWSConnector",
    "graph": "calmesh.connectors.graph:GraphConnector",
    "google": "calmesh.connectors.google:GoogleConnector",
    "zoho": "calmesh.connectors.zoho:ZohoConnector",
    "sql": "calmesh.connectors.sql:SQLConnector",
}
ENTRY_POINT_GROUP = "calmesh.connectors"


def _load(target: str) -> type[Connector]:
    module_name, _, attr = target.partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    if not (isinstance(cls, type) and issubclass(cls, Connector)):
        raise TypeError(f"{target} is not a calmesh Connector")
    return cls


def kinds() -> dict[str, str]:
    """Every known kind -> "module:Class" (plugins may not shadow built-ins)."""
    found = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    found.update({k: v for k, v in BUILTIN.items() if importlib.util.find_spec(v.partition(":")[0]) is not None})
    return found


def connector_class(kind: str) -> type[Connector]:
    if kind in BUILTIN:  # plugins may not shadow built-ins, so the installed packages are not scanned
        return _load(BUILTIN[kind])  # (scanning them: ~7 ms for each connector a command creates)
    known = kinds()
    if kind not in known:
        raise KeyError(f"unknown platform kind {kind!r} (known: {', '.join(sorted(known))})")
    return _load(known[kind])


def settings_class(kind: str) -> type[ConnectorSettings]:
    """The settings model of ``kind``: a built-in's from :mod:`calmesh.connectors.settings`
    (the connector itself stays unimported), a plugin's from its class."""
    from calmesh.connectors.settings import BUILTIN as BUILTIN_SETTINGS

    if kind in BUILTIN_SETTINGS and kind in BUILTIN:
        return BUILTIN_SETTINGS[kind]
    return connector_class(kind).Settings


def settings_for(raw: dict[str, Any]) -> ConnectorSettings:
    """Validate a ``[platforms.NAME]`` table with its connector's own Settings model."""
    if "kind" not in raw:
        raise ValueError("missing 'kind' (caldav, ics, ews, graph, ...)")
    return settings_class(raw["kind"]).model_validate(raw)


def create(name: str, raw: dict[str, Any]) -> Connector:
    cls = connector_class(raw["kind"])
    return cls(name, cls.Settings.model_validate(raw))

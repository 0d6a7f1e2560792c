"""The libraries-alone anchor of the benches that time a command as a new process.

A command started from cron or a shell pays for every module it imports before it does anything.
Part of that is the command's own (its modules, its config, its work); the rest is the libraries
it is built on, which no code of its own can make cheaper. This anchor measures that rest: a new
interpreter importing every module the command had loaded when it ended, but the command's own,
in the order the command loaded them, then freezing the heap as ``calmesh.cli.main`` does. The
command minus this is its own share.

Used by ``bench/startup.py`` (``calmesh freebusy``) and ``bench/sync_vs_vdirsyncer.py`` (the cold
no-op of ``calmesh sync --once`` and of ``vdirsyncer sync``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping, Sequence

_LOADED = "LOADED:"


def loaded_modules(command: Sequence[str], env: Mapping[str, str], python: str = sys.executable) -> list[str]:
    """Every module ``command`` (a Python console script and its arguments) had loaded when it
    ended, in load order: the script run in a child through :func:`runpy.run_path`, as its own
    executable would run it, and ``sys.modules`` printed at its end."""
    code = (f"import json, runpy, sys\nsys.argv = {json.dumps(list(command))}\n"
            "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\nexcept SystemExit:\n    pass\n"
            f"print({_LOADED!r} + json.dumps(list(sys.modules)))")
    done = subprocess.run([python, "-c", code], check=True, capture_output=True, text=True, env=dict(env))
    return json.loads(done.stdout.rpartition(_LOADED)[2])


def libraries(modules: Sequence[str], package: str) -> list[str]:
    """``modules`` without the command's own: ``package`` and what it ran as (``__main__``)."""
    own = (package, "__main__", "__mp_main__")
    return [m for m in modules if not m.startswith(own)]


def importing(names: Sequence[str], python: str = sys.executable) -> list[str]:
    """The command that imports ``names`` in order and freezes the heap. A module that only
    exists once another has run (an alias some package sets up) is skipped."""
    return [python, "-c", "import gc, importlib, json\nfor name in json.loads(" + repr(json.dumps(list(names)))
            + "):\n    try:\n        importlib.import_module(name)\n    except Exception:\n        pass\n"
            "gc.freeze()"]

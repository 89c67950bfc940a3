"""The dashboard's server: check the extra, then serve the Solara app (``sim dashboard`` starts it).

The server is uvicorn running Solara's Starlette app with ``SOLARA_APP=sim.present.dashboard.app``, as
``solara run`` does, without its version check or browser opening. The page's front-end
(Vue, Vuetify, fonts) is served from the ``solara-assets`` package through Solara's local
asset proxy: nothing is fetched from a CDN, and Solara's usage telemetry is switched off.
"""

from __future__ import annotations

import errno
import importlib.util
import os
import signal
import socket
import sys
import warnings
from importlib import metadata
from typing import Any

from sim.present.dashboard.config import DashboardConfig
from sim.scenario.yamlio import InputError

#: Modules the dashboard extra provides (``pip install 'sim[dashboard]'``).
EXTRA_MODULES = ("solara", "solara_assets", "solara.server.starlette", "uvicorn", "ipyvuetify", "altair", "networkx")
INSTALL_HINT = "pip install 'sim[dashboard]' (in a checkout: .venv/bin/pip install -e '.[dashboard]')"
APP = "sim.present.dashboard.app"


def check_extra() -> None:
    """Raise :class:`InputError` (exit 2) naming what is missing when the extra is not installed."""
    missing = []
    for name in EXTRA_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name.split(".")[0])
    if missing:
        raise InputError(
            f"sim dashboard needs the dashboard extra (missing: {', '.join(dict.fromkeys(missing))}): {INSTALL_HINT}"
        )
    versions = {name: metadata.version(name) for name in ("solara", "solara-assets")}
    if versions["solara"] != versions["solara-assets"]:
        raise InputError(
            f"solara {versions['solara']} needs solara-assets of the same version (found {versions['solara-assets']}); "
            f"without it the page cannot load offline: pip install 'solara-assets=={versions['solara']}'"
        )


def free_port(host: str, port: int) -> int:
    """``port`` if it can be listened on (any free port for 0), else :class:`InputError`."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            why = "in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
            raise InputError(f"--host {host} --port {port}: cannot listen there ({why}); try another --port") from None
        return int(s.getsockname()[1])


def _exit_on_signal(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def serve(config: DashboardConfig, host: str, port: int) -> int:
    """Serve the page for ``config`` on ``host``:``port`` until stopped; returns the exit status.

    Call :func:`check_extra` first, and take ``port`` from :func:`free_port` (which says when it is taken).
    """
    os.environ.update(config.to_env())
    os.environ["SOLARA_APP"] = APP
    os.environ["SOLARA_TELEMETRY_MIXPANEL_ENABLE"] = "False"  # no usage reports: the page works offline
    os.environ.setdefault("SOLARA_ASSETS_PROXY", "True")  # serve the front-end from solara-assets
    # Solara warns on every page load served over plain http to a host other than "localhost"
    # that its session cookie falls back to SameSite=Lax: that is what a local page needs.
    warnings.filterwarnings("ignore", message="Cookies with samesite=none require https", category=UserWarning)
    # Solara 1.58's server imports websockets.legacy (to raise its line limit), deprecated upstream.
    warnings.filterwarnings("ignore", message="websockets.legacy is deprecated", category=DeprecationWarning)
    import uvicorn
    from solara.server import settings

    settings.main.mode = "production"
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
    print(f"sim dashboard: {config.scenario.name} against {config.baseline.name} on {url} (Ctrl-C to stop)", flush=True)
    # the sans-I/O websockets protocol: the default one is built on websockets.legacy, deprecated
    ws = "websockets-sansio" if "websockets-sansio" in uvicorn.config.WS_PROTOCOLS else "auto"
    server = uvicorn.Server(
        uvicorn.Config("solara.server.starlette:app", host=host, port=port, log_level="warning", ws=ws)
    )
    # uvicorn stops on SIGTERM and then raises the signal again; exit through Python instead, so
    # that the worker processes are stopped below
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        server.run()
    finally:
        session = sys.modules.get("sim.present.dashboard.session")  # loaded by the app at the first page
        if session is not None:
            session.POOL.shutdown()  # stop the worker processes with the server
    return 0


__all__ = ["check_extra", "free_port", "serve"]

"""The ``sim dashboard`` command: check the extra and the files, then serve the Solara app.

The server is uvicorn running Solara's Starlette app with ``SOLARA_APP=sim.present.dashboard.app``, as
``solara run`` does, without its version check or browser opening. The page's front-end
(Vue, Vuetify, fonts) is served from the ``solara-assets`` package through Solara's local
asset proxy: nothing is fetched from a CDN, and Solara's usage telemetry is switched off.
"""

from __future__ import annotations

import argparse
import errno
import importlib.util
import os
import signal
import socket
import sys
import warnings
from importlib import metadata
from typing import Any

from sim.present.dashboard.config import DEFAULT_REPLICATIONS, DEFAULT_SCALE, make_config
from sim.scenario.yamlio import InputError

#: Modules the dashboard extra provides (``pip install 'sim[dashboard]'``).
EXTRA_MODULES = ("solara", "solara_assets", "solara.server.starlette", "uvicorn", "ipyvuetify", "altair", "networkx")
INSTALL_HINT = "pip install 'sim[dashboard]' (in a checkout: .venv/bin/pip install -e '.[dashboard]')"
APP = "sim.present.dashboard.app"


def _number(kind: type, minimum: float) -> Any:
    def parse(text: str) -> Any:
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum:g}, got {v}")
        return v

    return parse


def _port(text: str) -> int:
    v = _number(int, 0)(text)
    if v > 65535:
        raise argparse.ArgumentTypeError(f"must be at most 65535, got {v}")
    return int(v)


def _scale(text: str) -> float:
    v = _number(float, 0.0)(text)
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {v}")
    return float(v)


def add_dashboard_commands(sub: Any) -> None:
    """Register ``sim dashboard`` (works without the extra: it then says how to install it)."""
    d = sub.add_parser(
        "dashboard", help="serve an interactive page: pick a scenario, move its levers, run against the baseline"
    )
    d.add_argument("scenario", nargs="?",
                   help="scenario shown first (default scenarios/baseline.yaml); the page offers the scenario files beside it")  # fmt: skip
    d.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    d.add_argument("--port", type=_port, default=8765, help="port (default 8765; 0 = any free port)")
    d.add_argument(
        "--baseline",
        help="scenario every run is compared with on the same seeds (default: baseline.yaml beside SCENARIO)",
    )
    d.add_argument("--replications", "-r", type=_number(int, 1), default=DEFAULT_REPLICATIONS,
                   help=f"replicates per scenario the page starts with (default {DEFAULT_REPLICATIONS})")  # fmt: skip
    d.add_argument("--scale", type=_scale, default=DEFAULT_SCALE,
                   help=f"real buyers per buyer agent the page starts with (default {DEFAULT_SCALE:g}: coarse, seconds per run)")  # fmt: skip
    d.add_argument("--seed", type=_number(int, 0), help="root seed the page starts with (default: the baseline's)")
    d.add_argument("--workers", "-w", type=_number(int, 1), help="worker processes per run (default: all cores)")
    d.set_defaults(func=cmd_dashboard)


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


def cmd_dashboard(args: argparse.Namespace) -> int:
    check_extra()
    config = make_config(args.scenario, args.baseline, args.replications, args.scale, args.seed, args.workers)
    port = free_port(args.host, args.port)
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
    url = f"http://{'[' + args.host + ']' if ':' in args.host else args.host}:{port}/"
    print(f"sim dashboard: {config.scenario.name} against {config.baseline.name} on {url} (Ctrl-C to stop)", flush=True)
    # the sans-I/O websockets protocol: the default one is built on websockets.legacy, deprecated
    ws = "websockets-sansio" if "websockets-sansio" in uvicorn.config.WS_PROTOCOLS else "auto"
    server = uvicorn.Server(
        uvicorn.Config("solara.server.starlette:app", host=args.host, port=port, log_level="warning", ws=ws)
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


__all__ = ["add_dashboard_commands", "check_extra", "cmd_dashboard"]

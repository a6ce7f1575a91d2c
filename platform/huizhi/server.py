"""The portal's server: Streamlit's ``st.App`` around ``huizhi/app.py``, plus health routes.

``huizhi run`` (and ``huizhi demo``) start ``streamlit run`` on this file. Streamlit (1.67)
finds the ``app`` below and serves it with its own Starlette server, so the portal, sign-in
(``/oauth2callback``) and ``/_stcore/*`` work exactly as for ``streamlit run app.py``; the
additions are:

* ``GET /livez``  200 ``{"status": "alive", …}`` while the process answers;
* ``GET /readyz`` 200 when the database answers, migrations are at head and the host is built,
  else 503 with the failing check (see :mod:`huizhi.health`); it answers within
  :data:`READY_TIMEOUT` seconds whatever the database does (connections time out after
  ``[database] connect_timeout``; a check still running after that is reported as not ready);
* the host is built when the server starts (in the background, so ``/livez`` answers at once),
  not when the first browser session arrives, and disposed when the server stops.

``/_stcore/health`` is Streamlit's own and only says the server runs: do not use it as readiness.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import streamlit as st
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from huizhi.health import process_host
from huizhi.logs import configure_logging, log_format

log = logging.getLogger("huizhi.server")

APP_SCRIPT = Path(__file__).with_name("app.py")
READY_TIMEOUT = 10.0  # seconds; below a load balancer's usual probe timeout plus one retry


async def livez(request: Request) -> JSONResponse:
    return JSONResponse(process_host().liveness(), headers={"Cache-Control": "no-store"})


async def readyz(request: Request) -> JSONResponse:
    # the checks talk to the database: never on the event loop that serves every session
    try:
        ready, report = await asyncio.wait_for(run_in_threadpool(process_host().readiness), READY_TIMEOUT)
    except TimeoutError:
        log.error("readiness: the checks did not finish within %g s (the database hangs?)", READY_TIMEOUT)
        ready, report = False, {
            "status": "not ready",
            "pid": os.getpid(),
            "checks": {"probe": {"ok": False, "detail": f"the checks did not finish within {READY_TIMEOUT:g} s"}},
        }
    return JSONResponse(report, status_code=200 if ready else 503, headers={"Cache-Control": "no-store"})


@contextlib.asynccontextmanager
async def lifespan(_app: Any) -> AsyncIterator[None]:
    configure_logging(log_format())
    log.info("building the host at start-up")
    process_host().start()
    try:
        yield
    finally:
        await run_in_threadpool(process_host().dispose)
        log.info("server stopping: host disposed")


app = st.App(
    str(APP_SCRIPT),
    routes=[Route("/livez", livez, methods=["GET", "HEAD"]), Route("/readyz", readyz, methods=["GET", "HEAD"])],
    lifespan=lifespan,
)

"""The smallest apps that do what the gateway does, for ``bench.floor``: how much CPU the stack alone costs.

``create(kind)`` returns a WSGI app answering ``GET /requests/<id>``:

- ``wsgi-sleep``: a bare WSGI function that waits ``FLOOR_LATENCY_MS`` and answers a small JSON body;
- ``flask-sleep``: the same as a Flask route;
- ``flask-urllib3``: a Flask route that forwards the GET to ``FLOOR_UPSTREAM`` with one pooled
  ``urllib3.PoolManager`` (``FLOOR_TOKEN`` as Zoho's OAuth header) and answers Zoho's body unchanged;
- ``flask-requests``: the same with one pooled ``requests.Session`` (``trust_env`` off, so that requests
  does not read the proxy variables and ``~/.netrc`` on every call, as the gateway's Transport does not).

What the gateway adds to ``flask-requests`` (auth, validation, retries, judging and reshaping the answer, the
access line, metrics) is its own cost; the rest is the floor under any Flask gateway on that worker class.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from typing import Any, cast

BODY = json.dumps({"ticket_id": "1", "status": "Open", "technician_assigned": "Unassigned"}).encode()
ACCEPT = "application/vnd.manageengine.sdp.v3+json"
KINDS = ("wsgi-sleep", "flask-sleep", "flask-urllib3", "flask-requests")

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def create(kind: str) -> WsgiApp:
    latency = float(os.environ.get("FLOOR_LATENCY_MS", "20")) / 1000
    if kind == "wsgi-sleep":

        def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            time.sleep(latency)
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))])
            return [BODY]

        return app

    from flask import Flask, Response

    flask_app = Flask(__name__)
    if kind == "flask-sleep":

        @flask_app.get("/requests/<ticket_id>")
        def sleep(ticket_id: str) -> Response:
            time.sleep(latency)
            return Response(BODY, mimetype="application/json")

    elif kind == "flask-urllib3":
        import urllib3

        pool = urllib3.PoolManager(maxsize=64, retries=False, timeout=urllib3.Timeout(connect=3, read=10))
        upstream = os.environ["FLOOR_UPSTREAM"].rstrip("/")
        headers = {"Authorization": f"Zoho-oauthtoken {os.environ['FLOOR_TOKEN']}", "Accept": ACCEPT}

        @flask_app.get("/requests/<ticket_id>")
        def forward_urllib3(ticket_id: str) -> Response:
            answer = pool.request("GET", f"{upstream}/api/v3/requests/{ticket_id}", headers=headers, redirect=False)
            return Response(answer.data, status=answer.status, mimetype="application/json")

    elif kind == "flask-requests":
        import requests

        session = requests.Session()
        session.trust_env = False
        session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=64))
        upstream = os.environ["FLOOR_UPSTREAM"].rstrip("/")
        headers = {"Authorization": f"Zoho-oauthtoken {os.environ['FLOOR_TOKEN']}", "Accept": ACCEPT}

        @flask_app.get("/requests/<ticket_id>")
        def forward(ticket_id: str) -> Response:
            answer = session.get(f"{upstream}/api/v3/requests/{ticket_id}", headers=headers, timeout=(3, 10))
            return Response(answer.content, status=answer.status_code, mimetype="application/json")

    else:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    return cast(WsgiApp, flask_app)

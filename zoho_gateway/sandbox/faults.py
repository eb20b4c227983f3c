"""Injected faults: parsed from the control API's JSON, queued by the world, carried out on live calls."""

from __future__ import annotations

import json
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from flask import Response

from . import wire


class FaultHost(Protocol):
    """What a fault acts on: the portal (API calls) or the account (token calls) being served."""

    def pause(self, seconds: float) -> bool: ...

    def expire_tokens(self) -> None: ...

    def rate_limited(self, retry_after: str) -> Response: ...

    def server_error(self, status: int) -> Response: ...

    @property
    def settings(self) -> Any: ...


# The API calls, by operation name (each also counts ``<operation>_calls``). SDP and Zoho Desk portals share
# the names (a Desk ticket read is "get", a comment "note"); "contacts"/"contact_create" are Desk's only.
API_OPERATIONS = frozenset(
    {
        "create",
        "get",
        "list",
        "update",
        "close",
        "note",
        "notes",
        "resolution",
        "upload",
        "attachments",
        "meta",
        "contacts",
        "contact_create",
    }
)
# The calls that change something: the ones an "after commit" fault can hit.
WRITE_OPERATIONS = frozenset({"create", "update", "close", "note", "resolution", "upload", "contact_create"})

# Which calls a fault applies to. "api" matches every SDP call (every operation above).
TARGETS = frozenset({"token", "api"}) | API_OPERATIONS

# Faults that let the call commit its change and then lose the answer: the cases where a client cannot
# know whether its write happened. ``fail_after_create`` is the original name of ``hang_after_commit``.
AFTER_COMMIT = frozenset({"fail_after_create", "hang_after_commit", "reset_after_commit", "status_after_commit"})

# kind -> the targets it makes sense for (None: any target).
KINDS: dict[str, frozenset[str] | None] = {
    "delay": None,
    "status": None,
    "html": None,
    "garbage": None,
    "rate_limit": None,
    "expire_tokens": None,
    "reset_connection": None,
    "throttle": frozenset({"token"}),
    "invalid_code": frozenset({"token"}),
    "fail_after_create": frozenset({"create", "api"}),
    "hang_after_commit": WRITE_OPERATIONS | {"api"},
    "reset_after_commit": WRITE_OPERATIONS | {"api"},
    "status_after_commit": WRITE_OPERATIONS | {"api"},
}

DEFAULT_SECONDS = 1.0


class FaultSpecError(ValueError):
    """The control API was given a fault it cannot understand."""


@dataclass(frozen=True)
class Fault:
    """One queued fault. ``times`` is None for "until cleared"; the world tracks what is left.

    ``probability`` below 1 makes the fault fire on that share of the matching calls, chosen at random
    (e.g. 0.2 for "one create in five loses its answer"); calls it skips do not use up ``times``.
    """

    target: str
    kind: str
    times: int | None = None
    seconds: float = DEFAULT_SECONDS
    status: int = 500
    body: bytes | None = None
    content_type: str | None = None
    retry_after: str | None = None
    probability: float = 1.0

    def matches(self, operation: str) -> bool:
        """Whether this fault applies to a call of ``operation`` ("token" or one of API_OPERATIONS).

        An after-commit fault aimed at "api" waits for a write: a read has nothing to commit.
        """
        if self.target == operation:
            return True
        if self.target != "api" or operation == "token":
            return False
        return self.kind not in AFTER_COMMIT or operation in WRITE_OPERATIONS

    def describe(self) -> dict[str, Any]:
        """A JSON-ready view of the fault, for the control API."""
        return {
            "target": self.target,
            "kind": self.kind,
            "times": self.times,
            "seconds": self.seconds,
            "status": self.status,
            "body": None if self.body is None else self.body.decode("utf-8", "replace"),
            "content_type": self.content_type,
            "retry_after": self.retry_after,
            "probability": self.probability,
        }


def _number(payload: Mapping[str, Any], key: str, default: float) -> float:
    value = payload.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise FaultSpecError(f"{key!r} must be a non-negative number")
    return float(value)


def _body(raw: object) -> tuple[bytes | None, str | None]:
    """Encode a fault body; a string is sent as is, any other JSON value is serialised."""
    if raw is None:
        return None, None
    if isinstance(raw, str):
        try:
            json.loads(raw)
        except ValueError:
            return raw.encode("utf-8"), "text/plain; charset=utf-8"
        return raw.encode("utf-8"), "application/json"
    return json.dumps(raw).encode("utf-8"), "application/json"


def parse_fault(payload: object) -> Fault:
    """Build a Fault from the control API's JSON; raises FaultSpecError naming the problem."""
    if not isinstance(payload, Mapping):
        raise FaultSpecError("a fault must be a JSON object")
    target = payload.get("target")
    kind = payload.get("kind")
    if target not in TARGETS:
        raise FaultSpecError(f"'target' must be one of {sorted(TARGETS)}")
    if not isinstance(kind, str) or kind not in KINDS:
        raise FaultSpecError(f"'kind' must be one of {sorted(KINDS)}")
    allowed = KINDS[kind]
    if allowed is not None and target not in allowed:
        raise FaultSpecError(f"kind {kind!r} needs target in {sorted(allowed)}")

    times = payload.get("times")
    if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
        raise FaultSpecError("'times' must be a positive integer (or absent: until cleared)")

    status = payload.get("status", 500)
    if kind in ("status", "status_after_commit") and "status" not in payload:
        raise FaultSpecError("kind 'status' needs 'status'")
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise FaultSpecError("'status' must be an HTTP status code")

    body, guessed_type = _body(payload.get("body"))
    content_type = payload.get("content_type", guessed_type)
    if content_type is not None and not isinstance(content_type, str):
        raise FaultSpecError("'content_type' must be a string")

    retry_after = payload.get("retry_after")
    if retry_after is not None:
        if isinstance(retry_after, bool) or not isinstance(retry_after, (int, str)):
            raise FaultSpecError("'retry_after' must be an integer or a string")
        retry_after = str(retry_after)

    probability = _number(payload, "probability", 1.0)
    if not 0 < probability <= 1:
        raise FaultSpecError("'probability' must be in (0, 1]")

    return Fault(
        target=str(target),
        kind=kind,
        times=times,
        seconds=_number(payload, "seconds", DEFAULT_SECONDS),
        status=status,
        body=body,
        content_type=content_type,
        retry_after=retry_after,
        probability=probability,
    )


# ---- enacting a fault ------------------------------------------------------------------------------

_HTML_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
    b"<body><center><h1>502 Bad Gateway</h1></center><hr><center>sandbox-proxy</center></body></html>\n"
)
_GARBAGE = b'\x00\xff<response status=ok>{"request": \x1b[31mtruncated'


def _drop_connection(environ: Mapping[str, Any]) -> Response:
    """Close the client's connection without an answer.

    Under werkzeug's server (and gunicorn) the WSGI environ exposes the socket; shutting it down sends a
    FIN before any status line, so the client sees "connection closed without response". The response
    returned afterwards is never delivered: writing it fails with EPIPE, which both servers treat as a
    dropped connection. Without a socket (e.g. Flask's test client) we fall back to headers promising a
    body that never comes, which a real client reports as an incomplete read.
    """
    sock = environ.get("werkzeug.socket") or environ.get("gunicorn.socket")
    if isinstance(sock, socket.socket):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        return Response(b"", status=500)
    return Response(iter([b""]), status=200, headers={"Content-Length": "64"}, content_type="application/json")


def aborted() -> Response:
    """What a delayed request answers when a reset or shutdown interrupts its sleep."""
    return Response(b"sandbox reset while this request was delayed\n", status=503, content_type="text/plain")


def enact(fault: Fault, world: FaultHost, environ: Mapping[str, Any]) -> Response | None:
    """Carry out ``fault`` for the current call.

    Returns the response to send instead of the normal one, or None to carry on normally (after a delay or
    after expiring tokens). After-commit faults return None here: the view commits first and then calls
    ``after_commit``.
    """
    kind = fault.kind
    if kind == "delay":
        return None if world.pause(fault.seconds) else aborted()
    if kind == "expire_tokens":
        world.expire_tokens()
        return None
    if kind in AFTER_COMMIT:
        return None
    if kind == "status":
        response = Response(fault.body or b"", status=fault.status, content_type=fault.content_type or "text/plain")
    elif kind == "html":
        response = Response(_HTML_PAGE, status=502, content_type=fault.content_type or "text/html")
    elif kind == "garbage":
        response = Response(_GARBAGE, status=200, content_type=fault.content_type or wire.JSON_TYPE)
    elif kind == "rate_limit":
        return world.rate_limited(fault.retry_after or "1")
    elif kind == "throttle":
        return wire.token_throttled(world.settings.throttle_http_status)
    elif kind == "invalid_code":
        return wire.token_error("invalid_code")
    elif kind == "reset_connection":
        return _drop_connection(environ)
    else:  # pragma: no cover - parse_fault only admits the kinds above
        raise AssertionError(f"unhandled fault kind {kind!r}")
    if fault.retry_after is not None:
        response.headers["Retry-After"] = fault.retry_after
    return response


def after_commit(fault: Fault | None, world: FaultHost, environ: Mapping[str, Any]) -> Response | None:
    """Lose the answer of a call that has already committed its change, if ``fault`` says so.

    - ``hang_after_commit`` / ``fail_after_create``: sleep ``seconds`` (past the client's read timeout),
      then answer normally (return None) to a client that has usually given up;
    - ``reset_after_commit``: close the connection without an answer;
    - ``status_after_commit``: answer ``status`` (500, 502, 503, ...) with ``body``, or by default SDP's
      4004 "Internal error" envelope (Zoho Desk portals: INTERNAL_SERVER_ERROR).

    Returns None (send the normal answer) for any other fault or none.
    """
    if fault is None or fault.kind not in AFTER_COMMIT:
        return None
    if fault.kind == "reset_after_commit":
        return _drop_connection(environ)
    if fault.kind == "status_after_commit":
        if fault.body is None:
            response = world.server_error(fault.status)
        else:
            response = Response(fault.body, status=fault.status, content_type=fault.content_type or "text/plain")
        if fault.retry_after is not None:
            response.headers["Retry-After"] = fault.retry_after
        return response
    return None if world.pause(fault.seconds) else aborted()

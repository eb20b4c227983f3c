"""The ServiceDesk Plus v3 client: requests and their notes, resolution, files and pick lists, with auth,
retries and error mapping.

Owns transport concerns only; what an answer means is decided by :mod:`.parser`.
Raises only :mod:`zoho_gateway.errors` exceptions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlencode

from ..errors import ZohoOutcomeUnknown, ZohoTimeout, ZohoUnavailable
from .calling import Caller, CallObserver, StreamBody, Voice
from .model import Upload
from .multipart import MultipartStream
from .parser import (
    ADDING,
    UNKNOWN_OUTCOMES,
    Operation,
    created_entity,
    entity_list,
    entity_of,
    judge,
    request_entity,
    request_list,
)
from .retry import RetryPolicy
from .tokens import TokenManager
from .transport import NoAnswer, NotSent, Transport, TransportError

#: The per-request lists the client reads, by URL segment, with the key their answers list them under.
CHILD_LISTS: dict[str, tuple[str, ...]] = {"notes": ("request_notes", "notes"), "attachments": ("attachments",)}

ACCEPT = "application/vnd.manageengine.sdp.v3+json"

VOICE = Voice(
    replacing="Zoho answered 401; replacing the token",
    retrying="retrying Zoho call",
    refused_fresh=("Zoho refused a freshly minted access token: check the OAuth scopes, ZOHO_DC and ZOHO_API_BASE_URL"),
)


class ServiceDeskClient:
    """Thread-safe. ``base_url`` is the SDP root (``https://host`` or ``https://host/app/<portal>``)."""

    def __init__(
        self,
        *,
        base_url: str,
        transport: Transport,
        tokens: TokenManager,
        policy: RetryPolicy,
        observe: CallObserver | None = None,
    ) -> None:
        self._api_url = f"{base_url.rstrip('/')}/api/v3"
        self._requests_url = f"{self._api_url}/requests"
        self._caller = Caller(transport=transport, tokens=tokens, policy=policy, observe=observe, voice=VOICE)

    def create_request(self, input_data: str) -> Mapping[str, Any]:
        """POST a new request and return Zoho's entity. Never re-sends a POST that may have arrived.

        Raises, by what the caller may do next:
        - nothing was created, safe to send again: ZohoUnavailable and its subclasses (the connection was
          never made, HTTP 503 or 429, no token);
        - the ticket may exist: ZohoOutcomeUnknown (sent and no answer; a 502 or 504; another 5xx unless
          SDP's envelope names a refusal; a 2xx that cannot be read);
        - refused for good: ZohoRejected (a value), ZohoAuthFailed, ZohoBadResponse (a 4xx).
        """
        body = urlencode({"input_data": input_data}).encode()
        return created_entity(self._call("POST", self._requests_url, body, "create"))

    def list_requests(self, list_info: Mapping[str, Any]) -> tuple[list[Mapping[str, Any]], bool]:
        """One page of requests chosen by ``list_info`` (see :mod:`.search`), and whether more pages follow.

        ``list_info`` goes out as ``input_data={"list_info": ...}`` in the query string, serialised as
        JSON (never formatted by hand, so client text cannot change the query). Retried like every GET.
        Raises ZohoUnavailable, ZohoTimeout, ZohoAuthFailed, ZohoBadResponse (also when Zoho refuses the
        criteria: a refusal is never read as "no such ticket").
        """
        url = f"{self._requests_url}?{_query(list_info)}"
        return request_list(self._call("GET", url, None, "list"), _page_size(list_info))

    def get_request(self, ticket_id: str) -> Mapping[str, Any]:
        """GET one request by id (digits only, validated by the caller). Raises TicketNotFound and the above."""
        return request_entity(self._call("GET", self._ticket_url(ticket_id), None, "get"))

    # ---- the lifecycle of one request: every method raises TicketNotFound for an unknown id -------------

    def update_request(self, ticket_id: str, input_data: str) -> Mapping[str, Any] | None:
        """PUT ``input_data={"request": {...}}`` on a request; the entity Zoho answers, None if it gives none.

        Retried like a GET (it sets values: a second arrival changes nothing more). Raises ZohoRejected for a
        refused value, ZohoTimeout when no answer came (the update may be applied; sending it again is safe).
        """
        return entity_of(self._call("PUT", self._ticket_url(ticket_id), _form(input_data), "update"), "request")

    def close_request(self, ticket_id: str, input_data: str | None) -> Mapping[str, Any] | None:
        """PUT ``/requests/{id}/close`` with ``input_data={"request": {"closure_info": {...}}}`` (optional).

        The entity Zoho answers, or None. Retried like an update. A request that is already closed is
        refused (ZohoRejected or ZohoBadResponse with a 4xx ``upstream_status``): the caller decides.
        """
        body = _form(input_data) if input_data is not None else None
        return entity_of(self._call("PUT", self._ticket_url(ticket_id, "close"), body, "close"), "request")

    def set_resolution(self, ticket_id: str, input_data: str) -> None:
        """POST ``input_data={"resolution": {"content": ...}}``: the request's one resolution, added or replaced.

        A POST, so not re-sent once it may have arrived; but it sets the one resolution, so a caller may
        send it again after ZohoTimeout.
        """
        self._call("POST", self._ticket_url(ticket_id, "resolutions"), _form(input_data), "resolution")

    def add_note(self, ticket_id: str, input_data: str) -> Mapping[str, Any]:
        """POST ``input_data={"request_note": {...}}``; the note Zoho stored.

        Never re-sent once it may have arrived: ZohoOutcomeUnknown when no answer came or the answer
        cannot say (the note may exist).
        """
        answer = self._call("POST", self._ticket_url(ticket_id, "notes"), _form(input_data), "note")
        note = entity_of(answer, "request_note", "note")
        if note is None:
            raise ZohoOutcomeUnknown(f"Zoho answered without the note: {UNKNOWN_OUTCOMES['note']}")
        return note

    def upload(self, ticket_id: str, uploads: Sequence[Upload]) -> list[Mapping[str, Any]]:
        """POST the files to ``/requests/{id}/_uploads`` with ``addtoattachment=true``, in one multipart call,
        each streamed from its file object; the ``files`` Zoho answers.

        Never re-sent once it may have arrived (ZohoOutcomeUnknown). Re-sent only when nothing was done (no
        connection made, a 401), and then only if every stream can seek back to where it started.
        """
        starts = [upload.stream.tell() if upload.stream.seekable() else None for upload in uploads]
        opened = 0

        def body() -> MultipartStream:
            nonlocal opened
            opened += 1
            if opened > 1:
                for upload, start in zip(uploads, starts, strict=True):
                    if start is None:
                        raise ZohoUnavailable(
                            "Zoho refused the first send and a file cannot be read twice", retry_after=5
                        )
                    upload.stream.seek(start)
            files = [("filename", u.name, u.content_type, u.stream, u.size) for u in uploads]
            return MultipartStream([("addtoattachment", "true")], files)

        answer = self._call("POST", self._ticket_url(ticket_id, "_uploads"), body, "upload")
        files = answer.get("files")
        if not isinstance(files, list) or not all(isinstance(item, Mapping) for item in files):
            raise ZohoOutcomeUnknown(f"Zoho answered without the uploaded files: {UNKNOWN_OUTCOMES['upload']}")
        return list(files)

    def list_children(
        self, ticket_id: str, kind: str, list_info: Mapping[str, Any]
    ) -> tuple[list[Mapping[str, Any]], bool]:
        """One page of a request's ``notes`` or ``attachments``, and whether more pages follow (a read)."""
        operation: Operation = "notes" if kind == "notes" else "attachments"
        url = f"{self._ticket_url(ticket_id, kind)}?{_query(list_info)}"
        return entity_list(self._call("GET", url, None, operation), CHILD_LISTS[kind], _page_size(list_info))

    def list_values(self, kind: str, list_info: Mapping[str, Any]) -> tuple[list[Mapping[str, Any]], bool]:
        """One page of a pick list (``priorities``, ``statuses``, ``categories``, ``departments``) (a read)."""
        url = f"{self._api_url}/{quote(kind, safe='')}?{_query(list_info)}"
        return entity_list(self._call("GET", url, None, "meta"), (kind,), _page_size(list_info))

    def _ticket_url(self, ticket_id: str, *parts: str) -> str:
        return "/".join([self._requests_url, quote(ticket_id, safe=""), *parts])

    def _call(self, method: str, url: str, body: bytes | StreamBody | None, operation: Operation) -> dict[str, Any]:
        """Send with a valid token and judge the answer by :func:`.parser.judge`; on a 401, replace the token and
        re-send (at most one mint per call), retried by the policy: see :meth:`.calling.Caller.call`."""
        headers = {"Accept": ACCEPT}
        if isinstance(body, bytes):
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        return self._caller.call(
            method, url, headers, body, operation, judge=judge, unanswered=self._map_transport_error
        )

    @staticmethod
    def _map_transport_error(operation: Operation, error: TransportError | None) -> Exception:
        """The client-facing error for a call that got no answer. Only a call that provably never left
        carries a ``Retry-After`` that an adding write may follow; one that may have arrived carries none."""
        if isinstance(error, NotSent):
            return ZohoUnavailable("Zoho cannot be reached; nothing was sent", retry_after=5)
        if isinstance(error, NoAnswer) and operation in ("note", "upload"):
            return ZohoOutcomeUnknown(f"Zoho did not answer: {UNKNOWN_OUTCOMES[operation]}")
        if isinstance(error, NoAnswer) and operation in ADDING:
            # No Retry-After: a blind re-send may create a second ticket. The create queue settles it
            # (policies/delivery.py): it searches Zoho and sends again only when Zoho holds no such ticket.
            # This message is the pending item's ``last_error`` (GET /requests/<request_ref>) meanwhile.
            return ZohoOutcomeUnknown(
                "Zoho did not answer, so the ticket may or may not exist; the gateway searches Zoho for it "
                "before sending it again"
            )
        return ZohoTimeout("Zoho did not answer in time", retry_after=5)


def _form(input_data: str) -> bytes:
    """The form body ``input_data=<JSON>``."""
    return urlencode({"input_data": input_data}).encode()


def _query(list_info: Mapping[str, Any]) -> str:
    """``input_data={"list_info": ...}`` for a query string, serialised as JSON (never formatted by hand, so
    client text cannot change the query)."""
    return urlencode(
        {"input_data": json.dumps({"list_info": dict(list_info)}, ensure_ascii=False, separators=(",", ":"))}
    )


def _page_size(list_info: Mapping[str, Any]) -> int:
    """The rows a full page holds: ``row_count``, else SDP's default of 10."""
    row_count = list_info.get("row_count")
    return row_count if isinstance(row_count, int) and row_count > 0 else 10

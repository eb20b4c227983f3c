"""Attachments over real sockets: ``POST``/``GET /requests/<id>/attachments`` and ``POST /requests`` as a form.

Every status code of the routes (201, 200, 400, 404, 413, 415, 422), what reaches the sandbox (each file's
size and SHA-256 as it stored them, one ticket per create), the type judged from the bytes and not the
name or claimed type, names made safe, caps enforced while the body streams (the gateway stops reading;
a gunicorn worker's peak memory stays flat while 10 MiB files pass through it).
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import time
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.helpers import TICKET, TIMEOUT, assert_error, check_never_html, counters, create
from tests.servers import GunicornStarter, Sandbox, Starter, ThreadedGateway
from zoho_gateway.api.uploads import MAX_NAME, safe_name

MIB = 1024 * 1024
#: The module's gateway caps files at 1 MiB, so over-cap bodies stay small; the gunicorn tests use the default.
MODULE_GATEWAY_ENV = {"GATEWAY_MAX_ATTACHMENT_BYTES": str(MIB)}
FORM = "multipart/form-data; boundary=b0undary"


# ---- files of each kind, made here --------------------------------------------------------------------


def png(width: int = 2, height: int = 2) -> bytes:
    """A valid PNG (RGB, all black) of ``width`` x ``height`` pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\0" + b"\0\0\0" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def zipped(entries: dict[str, bytes], *, first: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        if first is not None:
            archive.writestr(zipfile.ZipInfo("mimetype"), first)  # stored, first: as ODF requires
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


OOXML_TYPES = b'<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>'
OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 1024
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\0" * 512
#: (name, bytes, the type the gateway must judge) for every default type.
ALLOWED: list[tuple[str, bytes, str]] = [
    ("shot.png", png(), "image/png"),
    ("photo.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01" + b"\0" * 200 + b"\xff\xd9", "image/jpeg"),
    ("anim.gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "image/gif"),
    ("pic.webp", b"RIFF\x24\x00\x00\x00WEBPVP8 \x18\x00\x00\x00" + b"\0" * 24, "image/webp"),
    ("doc.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n", "application/pdf"),
    ("notes.txt", "Grüße, 日本\nline two\n".encode(), "text/plain"),
    ("log.csv", b"a,b\n1,2\n", "text/plain"),
    (
        "letter.docx",
        zipped({"[Content_Types].xml": OOXML_TYPES, "word/document.xml": b"<w/>"}),
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
    (
        "sheet.xlsx",
        zipped({"[Content_Types].xml": OOXML_TYPES, "xl/workbook.xml": b"<x/>"}),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
    (
        "deck.pptx",
        zipped({"[Content_Types].xml": OOXML_TYPES, "ppt/presentation.xml": b"<p/>"}),
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ),
    (
        "text.odt",
        zipped({"content.xml": b"<o/>"}, first="application/vnd.oasis.opendocument.text"),
        "application/vnd.oasis.opendocument.text",
    ),
    (
        "calc.ods",
        zipped({"content.xml": b"<o/>"}, first="application/vnd.oasis.opendocument.spreadsheet"),
        "application/vnd.oasis.opendocument.spreadsheet",
    ),
    ("bundle.zip", zipped({"a.txt": b"a", "b/c.txt": b"c"}), "application/zip"),
]
#: (name the client gives, bytes, type it claims, the type the gateway finds) for files that must be refused.
DISGUISED: list[tuple[str, bytes, str, str]] = [
    ("cat.png", EXE, "image/png", "application/vnd.microsoft.portable-executable"),
    ("readme.txt", b"<html><body><script>alert(1)</script></body></html>", "text/plain", "text/html"),
    (
        "drawing.png",
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        "image/png",
        "image/svg+xml",
    ),
    (
        "invoice.docx",
        zipped({"[Content_Types].xml": OOXML_TYPES, "word/document.xml": b"<w/>", "word/vbaProject.bin": b"\0"}),
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.ms-word.document.macroEnabled.12",
    ),
    ("old.doc", OLE2, "application/msword", "application/x-ole-storage"),
    ("binary.txt", b"text then a NUL\0 byte", "text/plain", "application/octet-stream"),
    ("latin1.txt", "café".encode("latin-1"), "text/plain", "application/octet-stream"),
    ("cut.zip", zipped({"a.txt": b"a" * 1000})[:40], "application/zip", "application/octet-stream"),
]


# ---- calls -------------------------------------------------------------------------------------------------

File = tuple[str, bytes] | tuple[str, bytes, str]


def attach(gateway: ThreadedGateway | str, ticket_id: str, files: list[File], **kwargs: Any) -> requests.Response:
    url = gateway if isinstance(gateway, str) else gateway.url
    parts = [("file", f) for f in files]
    return check_never_html(
        requests.post(f"{url}/requests/{ticket_id}/attachments", files=parts, timeout=TIMEOUT, **kwargs)
    )


def create_with_files(
    gateway: ThreadedGateway, ticket: Any = TICKET, files: list[File] = (), **headers: str
) -> requests.Response:
    """``POST /requests`` as a browser's FormData sends it: a ``ticket`` part (JSON), then ``file`` parts."""
    body = ticket if isinstance(ticket, (str, bytes)) else json.dumps(ticket)
    parts: list[tuple[str, Any]] = [("ticket", (None, body, "application/json")), *(("file", f) for f in files)]
    return check_never_html(requests.post(f"{gateway.url}/requests", files=parts, headers=headers, timeout=TIMEOUT))


def stored(sandbox: Sandbox, ticket_id: str) -> list[dict[str, Any]]:
    """The ticket's attachments as the sandbox keeps them (with ``_sha256``)."""
    answer = requests.get(f"{sandbox.url}/_sandbox/tickets/{ticket_id}/attachments", timeout=TIMEOUT)
    answer.raise_for_status()
    items: list[dict[str, Any]] = answer.json()["attachments"]
    return items


def fingerprint(files: list[tuple[str, bytes]]) -> list[tuple[str, str, str]]:
    return [(name, str(len(data)), hashlib.sha256(data).hexdigest()) for name, data in files]


def kept(sandbox: Sandbox, ticket_id: str) -> list[tuple[str, str, str]]:
    return [(a["name"], a["size"]["value"], a["_sha256"]) for a in stored(sandbox, ticket_id)]


def form_stream(parts: list[tuple[str, str | None, Iterator[bytes]]], boundary: str = "b0undary") -> Iterator[bytes]:
    """A multipart body generated chunk by chunk (so requests sends it chunked, never holding it whole)."""
    for name, filename, chunks in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        yield f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        yield from chunks
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode()


def repeated(byte: bytes, size: int, chunk: int = 256 * 1024) -> Iterator[bytes]:
    block = byte * chunk
    while size > 0:
        yield block[: min(chunk, size)]
        size -= chunk


# ---- POST /requests/<id>/attachments: 201, and GET: 200 ----------------------------------------------------


def test_files_are_attached_as_sent_and_listed(reused_gateway: ThreadedGateway, sandbox: Sandbox) -> None:
    ticket_id = create(reused_gateway)
    files = [("shot.png", png(64, 48)), ("notes.txt", b"step 1\nstep 2\n")]
    answer = attach(reused_gateway, ticket_id, [(n, d, "application/octet-stream") for n, d in files])
    assert answer.status_code == 201, answer.text
    assert answer.headers["Location"] == f"/requests/{ticket_id}/attachments"
    items = answer.json()["items"]
    assert [(i["name"], i["size"], i["content_type"]) for i in items] == [
        ("shot.png", len(files[0][1]), "image/png"),  # the bytes decide, not the claimed octet-stream
        ("notes.txt", len(files[1][1]), "text/plain"),
    ]
    assert all(i["attachment_id"].isdigit() for i in items)
    assert kept(sandbox, ticket_id) == fingerprint(files)  # byte for byte, as Zoho stored them

    listed = check_never_html(requests.get(f"{reused_gateway.url}/requests/{ticket_id}/attachments", timeout=TIMEOUT))
    assert listed.status_code == 200
    assert listed.json() == {"items": items}
    assert listed.headers["Cache-Control"] == "no-cache"
    assert sandbox.ticket(ticket_id)["has_attachments"] is True


def test_a_ticket_without_attachments_lists_none(reused_gateway: ThreadedGateway) -> None:
    ticket_id = create(reused_gateway)
    listed = requests.get(f"{reused_gateway.url}/requests/{ticket_id}/attachments", timeout=TIMEOUT)
    assert (listed.status_code, listed.json()) == (200, {"items": []})


def test_every_default_type_is_judged_from_its_bytes_and_accepted(
    reused_gateway: ThreadedGateway, sandbox: Sandbox
) -> None:
    ticket_id = create(reused_gateway)
    # The claimed type is always wrong on purpose: only the bytes count. At most 10 files a form: two forms.
    items = []
    for half in (ALLOWED[:7], ALLOWED[7:]):
        answer = attach(reused_gateway, ticket_id, [(name, data, "application/x-made-up") for name, data, _ in half])
        assert answer.status_code == 201, answer.text
        items += answer.json()["items"]
    assert [(i["name"], i["content_type"]) for i in items] == [(n, t) for n, _, t in ALLOWED]
    assert kept(sandbox, ticket_id) == fingerprint([(n, d) for n, d, _ in ALLOWED])
    assert [a["content_type"] for a in stored(sandbox, ticket_id)] == [t for _, _, t in ALLOWED]


# ---- 415: a type not allowed, whatever the name and the claim ---------------------------------------------


@pytest.mark.parametrize(("name", "data", "claimed", "found"), DISGUISED, ids=[d[0] for d in DISGUISED])
def test_a_disguised_type_is_415_naming_what_was_found(
    name: str, data: bytes, claimed: str, found: str, reused_gateway: ThreadedGateway, sandbox: Sandbox
) -> None:
    ticket_id = create(reused_gateway)
    before = counters(sandbox)
    answer = attach(reused_gateway, ticket_id, [("ok.png", png()), (name, data, claimed)])
    body = assert_error(answer, 415, "unsupported_attachment_type")
    assert body["details"]["detected_type"] == found
    assert (body["details"]["file"], body["details"]["file_index"]) == (name, 1)
    assert found in body["details"]["message"]
    assert counters(sandbox).get("upload_calls", 0) == before.get("upload_calls", 0)  # all or none: nothing sent
    assert stored(sandbox, ticket_id) == []


def test_the_allowlist_is_configurable(make_gateway: Starter, sandbox: Sandbox) -> None:
    gateway = make_gateway(GATEWAY_ATTACHMENT_TYPES="image/png, application/x-ole-storage")
    ticket_id = create(gateway)
    assert attach(gateway, ticket_id, [("old.xls", OLE2), ("a.png", png())]).status_code == 201
    refused = attach(gateway, ticket_id, [("a.pdf", ALLOWED[4][1])])
    assert assert_error(refused, 415, "unsupported_attachment_type")["details"]["detected_type"] == "application/pdf"


def test_a_body_that_is_not_a_form_is_415(reused_gateway: ThreadedGateway, sandbox: Sandbox) -> None:
    ticket_id = create(reused_gateway)
    url = f"{reused_gateway.url}/requests/{ticket_id}/attachments"
    for content_type in ("image/png", "application/json", "application/x-www-form-urlencoded"):
        answer = requests.post(url, data=png(), headers={"Content-Type": content_type}, timeout=TIMEOUT)
        assert_error(answer, 415, "multipart_required")
    assert_error(requests.post(url, data=png(), timeout=TIMEOUT), 415, "multipart_required")


# ---- 400: malformed forms ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("why", "content_type", "body"),
    [
        ("no boundary", "multipart/form-data", b"--x\r\n"),
        ("empty body", FORM, b""),
        (
            "no closing boundary",
            FORM,
            b'--b0undary\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\nab',
        ),
        ("no part headers end", FORM, b'--b0undary\r\nContent-Disposition: form-data; name="file"'),
        ("no Content-Disposition", FORM, b"--b0undary\r\nContent-Type: text/plain\r\n\r\nab\r\n--b0undary--\r\n"),
        ("no parts", FORM, b"--b0undary--\r\n"),
        (
            "another part name",
            FORM,
            b'--b0undary\r\nContent-Disposition: form-data; name="files"; filename="a"\r\n\r\nab\r\n--b0undary--\r\n',
        ),
        (
            "a ticket part here",
            FORM,
            b'--b0undary\r\nContent-Disposition: form-data; name="ticket"\r\n\r\n{}\r\n--b0undary--\r\n',
        ),
        ("garbage", FORM, b"\x00\xff" * 100),
    ],
)
def test_a_malformed_form_is_400(
    why: str, content_type: str, body: bytes, reused_gateway: ThreadedGateway, sandbox: Sandbox
) -> None:
    ticket_id = create(reused_gateway)
    before = counters(sandbox)
    answer = requests.post(
        f"{reused_gateway.url}/requests/{ticket_id}/attachments",
        data=body,
        headers={"Content-Type": content_type},
        timeout=TIMEOUT,
    )
    assert_error(answer, 400, "invalid_multipart")
    assert counters(sandbox).get("upload_calls", 0) == before.get("upload_calls", 0)


# ---- 404 and a bad id ----------------------------------------------------------------------------------


def test_an_unknown_ticket_is_404_and_a_bad_id_400(reused_gateway: ThreadedGateway, sandbox: Sandbox) -> None:
    assert_error(attach(reused_gateway, "999999", [("a.png", png())]), 404, "ticket_not_found")
    listed = requests.get(f"{reused_gateway.url}/requests/999999/attachments", timeout=TIMEOUT)
    assert_error(listed, 404, "ticket_not_found")
    before = counters(sandbox)
    assert_error(attach(reused_gateway, "12ab", [("a.png", png())]), 400, "invalid_ticket_id")
    assert_error(
        requests.get(f"{reused_gateway.url}/requests/12ab/attachments", timeout=TIMEOUT), 400, "invalid_ticket_id"
    )
    assert counters(sandbox)["api_calls"] == before["api_calls"]


# ---- names --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "content_type", "expected"),
    [
        ("../../etc/passwd.txt", "text/plain", "passwd.txt"),
        ("C:\\Users\\jane\\Desktop\\shot.png", "image/png", "shot.png"),
        ("a\x00b\x1f\x7fc.png", "image/png", "abc.png"),
        ("invoice\u202egnp.exe", "image/png", "invoicegnp.exe"),  # a right-to-left override would show "exe.png"
        ("  spaced \t\n out .png ", "image/png", "spaced out .png"),
        ("...hidden.png", "image/png", "hidden.png"),
        ("trailing.png. . ", "image/png", "trailing.png"),
        ('a<b>c:d"e|f?g*h.png', "image/png", "a_b_c_d_e_f_g_h.png"),
        ("CON.txt", "text/plain", "_CON.txt"),
        ("page.html", "text/plain", "page.html.txt"),
        ("run.SH", "text/plain", "run.SH.txt"),
        ("", "image/png", "attachment.png"),
        (None, "text/plain", "attachment.txt"),
        ("../", "application/pdf", "attachment.pdf"),
        ("\x00\x01", "application/zip", "attachment.zip"),
        ("Cafe\u0301.txt", "text/plain", "Café.txt"),  # NFC
    ],
)
def test_names_are_made_safe(raw: str | None, content_type: str, expected: str) -> None:
    assert safe_name(raw, content_type) == expected


def test_long_names_are_cut_keeping_the_extension() -> None:
    name = safe_name("x" * 500 + ".png", "image/png")
    assert len(name) == MAX_NAME and name.endswith("x.png")
    assert len(safe_name("日" * 400, "text/plain")) == MAX_NAME


def test_names_reach_zoho_made_safe(reused_gateway: ThreadedGateway, sandbox: Sandbox) -> None:
    ticket_id = create(reused_gateway)
    answer = attach(reused_gateway, ticket_id, [("../../x/\u202eshot.png", png()), ("", b"plain"), ("a.htm", b"<p>")])
    assert answer.status_code == 201, answer.text
    names = ["shot.png", "attachment.txt", "a.htm.txt"]
    assert [i["name"] for i in answer.json()["items"]] == names
    assert [a["name"] for a in stored(sandbox, ticket_id)] == names


# ---- 413: caps counted while the body streams -------------------------------------------------------------


class ReadCounter:
    """WSGI middleware: how many body bytes the app read (the server may drain the rest, unread by the app)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.read = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        source = environ["wsgi.input"]
        counter = self

        class Counted:
            def read(self, *args: Any) -> bytes:
                data: bytes = source.read(*args)
                counter.read += len(data)
                return data

            def readline(self, *args: Any) -> bytes:
                data: bytes = source.readline(*args)
                counter.read += len(data)
                return data

        environ["wsgi.input"] = Counted()
        return self.app(environ, start_response)


def test_a_file_over_the_cap_is_413_and_reading_stops_there(make_gateway: Starter, sandbox: Sandbox) -> None:
    gateway = make_gateway(GATEWAY_MAX_ATTACHMENT_BYTES=str(MIB))
    counter = ReadCounter(gateway.app.wsgi_app)
    gateway.app.wsgi_app = counter  # type: ignore[method-assign]
    ticket_id = create(gateway)
    before = counters(sandbox)
    # 200 MiB, chunked (no Content-Length to refuse it by): only the streaming count can stop it.
    body = form_stream([("file", "small.png", iter([png()])), ("file", "huge.txt", repeated(b"a", 200 * MIB))])
    counter.read = 0
    answer = requests.post(
        f"{gateway.url}/requests/{ticket_id}/attachments", data=body, headers={"Content-Type": FORM}, timeout=60
    )
    details = assert_error(answer, 413, "attachment_too_large")["details"]
    assert (details["limit"], details["max_bytes"], details["file"], details["file_index"]) == (
        "file_bytes",
        MIB,
        "huge.txt",
        1,
    )
    assert counter.read < MIB + 256 * 1024, counter.read  # the cap and one read past it, of 200 MiB sent
    assert counters(sandbox).get("upload_calls", 0) == before.get("upload_calls", 0)
    # A file of exactly the cap is fine.
    exact = attach(gateway, ticket_id, [("exact.txt", b"b" * MIB)])
    assert exact.status_code == 201 and exact.json()["items"][0]["size"] == MIB


def test_a_declared_length_over_the_total_is_413_before_reading(
    reused_gateway: ThreadedGateway, sandbox: Sandbox
) -> None:
    ticket_id = create(reused_gateway)
    answer = attach(reused_gateway, ticket_id, [(f"{i}.txt", b"c" * (MIB - 100)) for i in range(4)])
    details = assert_error(answer, 413, "attachment_too_large")["details"]
    assert details["limit"] == "total_bytes" and details["max_bytes"] >= 3 * MIB


def test_more_than_ten_files_is_413(reused_gateway: ThreadedGateway, sandbox: Sandbox) -> None:
    ticket_id = create(reused_gateway)
    details = assert_error(
        attach(reused_gateway, ticket_id, [(f"{i}.txt", b"x") for i in range(11)]), 413, "attachment_too_large"
    )["details"]
    assert (details["limit"], details["max_files"]) == ("files", 10)
    assert attach(reused_gateway, ticket_id, [(f"{i}.txt", b"x") for i in range(10)]).status_code == 201


# ---- POST /requests as a form ------------------------------------------------------------------------------


def test_a_form_creates_the_ticket_with_its_screenshot(reused_gateway: ThreadedGateway, sandbox: Sandbox) -> None:
    shot = png(320, 200)
    answer = create_with_files(reused_gateway, {**TICKET, "priority": "High"}, [("screenshot.png", shot, "image/png")])
    assert answer.status_code == 201, answer.text
    body = answer.json()
    ticket_id = body["zoho_ticket_id"]
    assert answer.headers["Location"] == f"/requests/{ticket_id}"
    assert body["message"] == "Ticket created successfully"
    assert body["attachments"]["failed"] == []
    [item] = body["attachments"]["items"]
    assert (item["name"], item["size"], item["content_type"]) == ("screenshot.png", len(shot), "image/png")
    assert [t["id"] for t in sandbox.tickets()] == [ticket_id]
    entity = sandbox.ticket(ticket_id)
    assert entity["subject"] == TICKET["subject"] and entity["priority"]["name"] == "High"
    assert kept(sandbox, ticket_id) == fingerprint([("screenshot.png", shot)])


def test_a_form_with_only_a_ticket_creates_it(reused_gateway: ThreadedGateway, sandbox: Sandbox) -> None:
    answer = create_with_files(reused_gateway)
    assert answer.status_code == 201, answer.text
    assert answer.json()["attachments"] == {"items": [], "failed": []}
    assert sandbox.ticket_count() == 1


def test_a_failed_upload_after_the_create_is_reported_in_the_201(
    reused_gateway: ThreadedGateway, sandbox: Sandbox
) -> None:
    sandbox.fault(target="upload", kind="status", status=500, times=10)
    answer = create_with_files(reused_gateway, files=[("a.png", png()), ("b.txt", b"log")])
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["attachments"]["items"] == []
    failed = body["attachments"]["failed"]
    assert [f["name"] for f in failed] == ["a.png", "b.txt"]
    # A 500 to a write that is not idempotent: Zoho may have attached the files, so the code says "unknown".
    assert {f["code"] for f in failed} == {"zoho_outcome_unknown"} and all(f["message"] for f in failed)
    # One ticket, never lost: the client attaches the files again to it.
    assert [t["id"] for t in sandbox.tickets()] == [body["zoho_ticket_id"]]
    assert stored(sandbox, body["zoho_ticket_id"]) == []
    sandbox.clear_faults()
    listed = requests.get(f"{reused_gateway.url}/requests/{body['zoho_ticket_id']}/attachments", timeout=TIMEOUT)
    assert listed.json() == {"items": []}  # what the client checks before sending again
    again = attach(reused_gateway, body["zoho_ticket_id"], [("a.png", png()), ("b.txt", b"log")])
    assert again.status_code == 201 and len(stored(sandbox, body["zoho_ticket_id"])) == 2


def test_zoho_unavailable_for_the_upload_is_reported_too(reused_gateway: ThreadedGateway, sandbox: Sandbox) -> None:
    sandbox.fault(target="upload", kind="status", status=503, times=10)
    answer = create_with_files(reused_gateway, files=[("a.png", png())])
    assert answer.status_code == 201, answer.text
    [failed] = answer.json()["attachments"]["failed"]
    assert failed["code"] == "zoho_unavailable"
    assert sandbox.ticket_count() == 1


@pytest.mark.parametrize(
    ("ticket", "status", "code"),
    [
        ({**TICKET, "requester_email": "nope"}, 422, "validation_failed"),
        ({**TICKET, "extra": 1}, 422, "validation_failed"),
        ('{"subject": ', 400, "invalid_json"),
        ("[1]", 400, "invalid_json"),
        ("", 400, "invalid_json"),
        (b"\xff\xfe", 400, "invalid_json"),
    ],
)
def test_a_form_whose_ticket_is_invalid_creates_nothing(
    ticket: Any, status: int, code: str, reused_gateway: ThreadedGateway, sandbox: Sandbox
) -> None:
    answer = create_with_files(reused_gateway, ticket, [("a.png", png())])
    body = assert_error(answer, status, code)
    if code == "invalid_json":
        assert "'ticket' part" in body["details"]["message"]
    assert sandbox.ticket_count() == 0 and sandbox.stats()["api_calls"] == 0


def test_a_form_whose_file_is_refused_creates_nothing(reused_gateway: ThreadedGateway, sandbox: Sandbox) -> None:
    assert_error(create_with_files(reused_gateway, files=[("cat.png", EXE)]), 415, "unsupported_attachment_type")
    big = [(f"{i}.txt", b"d" * (MIB + 1)) for i in range(1)]
    assert_error(create_with_files(reused_gateway, files=big), 413, "attachment_too_large")
    assert sandbox.ticket_count() == 0 and sandbox.stats()["api_calls"] == 0


def test_a_form_without_a_ticket_part_is_400(reused_gateway: ThreadedGateway, sandbox: Sandbox) -> None:
    answer = requests.post(f"{reused_gateway.url}/requests", files=[("file", ("a.png", png()))], timeout=TIMEOUT)
    assert "'ticket'" in assert_error(answer, 400, "invalid_multipart")["details"]["message"]
    twice = requests.post(
        f"{reused_gateway.url}/requests",
        files=[("ticket", (None, json.dumps(TICKET))), ("ticket", (None, json.dumps(TICKET)))],
        timeout=TIMEOUT,
    )
    assert_error(twice, 400, "invalid_multipart")
    assert sandbox.ticket_count() == 0


def test_a_form_with_prefer_respond_async_is_422_before_anything(
    reused_gateway: ThreadedGateway, sandbox: Sandbox
) -> None:
    answer = create_with_files(reused_gateway, files=[("a.png", png())], Prefer="respond-async, wait=5")
    assert_error(answer, 422, "async_create_with_files")
    assert sandbox.ticket_count() == 0


def test_a_form_answered_202_lists_its_files_as_not_attached(make_gateway: Starter, sandbox: Sandbox) -> None:
    # Every create queued (GATEWAY_QUEUE_CREATES=always), Zoho down for creates, nobody delivering: a 202.
    gateway = make_gateway(GATEWAY_QUEUE_CREATES="always", GATEWAY_DELIVERERS="0")
    sandbox.fault(target="create", kind="status", status=503, times=100)
    answer = create_with_files(gateway, files=[("a.png", png()), ("b.txt", b"log")])
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["status"] == "queued" and answer.headers["Location"] == f"/requests/{body['request_ref']}"
    assert body["attachments"]["items"] == []
    assert [(f["name"], f["code"]) for f in body["attachments"]["failed"]] == [
        ("a.png", "ticket_pending"),
        ("b.txt", "ticket_pending"),
    ]
    assert sandbox.stats().get("upload_calls", 0) == 0


def test_a_keyed_form_sent_twice_makes_one_ticket_with_each_file_once(
    reused_gateway: ThreadedGateway, sandbox: Sandbox
) -> None:
    files: list[File] = [("a.png", png()), ("b.txt", b"log")]
    first = create_with_files(reused_gateway, files=files, **{"Idempotency-Key": "form-1"})
    assert first.status_code == 201, first.text
    again = create_with_files(reused_gateway, files=[*files, ("c.txt", b"more")], **{"Idempotency-Key": "form-1"})
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    ticket_id = first.json()["zoho_ticket_id"]
    assert again.json()["zoho_ticket_id"] == ticket_id
    assert [i["name"] for i in again.json()["attachments"]["items"]] == ["a.png", "b.txt", "c.txt"]
    assert [a["name"] for a in stored(sandbox, ticket_id)] == ["a.png", "b.txt", "c.txt"]
    assert sandbox.ticket_count() == 1


def test_json_creates_are_unchanged(reused_gateway: ThreadedGateway) -> None:
    answer = requests.post(f"{reused_gateway.url}/requests", json=TICKET, timeout=TIMEOUT)
    assert answer.status_code == 201 and set(answer.json()) == {"message", "zoho_ticket_id"}
    refused = requests.post(f"{reused_gateway.url}/requests", data="x", headers={"Content-Type": "text/plain"})
    assert_error(refused, 415, "unsupported_media_type")


# ---- memory: a gunicorn worker's peak stays flat while 10 MiB files stream through it ------------------------


def peak_kib(pid: int) -> int:
    """The process's peak resident memory (VmHWM), KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_a_workers_peak_memory_stays_flat_under_10_mib_files(make_gunicorn: GunicornStarter, sandbox: Sandbox) -> None:
    server = make_gunicorn(workers=1, threads=4)  # the default caps: 10 MiB a file
    [worker] = server.worker_pids()
    ticket_id = create(server.url)
    # Warm up: imports, pools, the first token; then the peak so far is the baseline.
    assert attach(server.url, ticket_id, [("warm.png", png())]).status_code == 201
    baseline = peak_kib(worker)
    started = time.monotonic()
    sizes = [10 * MIB, 10 * MIB, 10 * MIB - 1]
    body = form_stream([("file", f"{i}.txt", repeated(b"e", size)) for i, size in enumerate(sizes)])
    answer = requests.post(
        f"{server.url}/requests/{ticket_id}/attachments", data=body, headers={"Content-Type": FORM}, timeout=120
    )
    assert answer.status_code == 201, answer.text
    assert [i["size"] for i in answer.json()["items"]] == sizes
    over = form_stream([("file", "huge.txt", repeated(b"f", 100 * MIB))])
    refused = requests.post(
        f"{server.url}/requests/{ticket_id}/attachments", data=over, headers={"Content-Type": FORM}, timeout=120
    )
    assert_error(refused, 413, "attachment_too_large")
    grown = peak_kib(worker) - baseline
    print(
        f"\n[attachments] worker peak grew {grown} KiB for 30 MiB attached and 100 MiB refused "
        f"({time.monotonic() - started:.1f} s)"
    )
    assert grown < 8 * 1024, f"the worker's peak memory grew {grown} KiB: files are being held in memory"
    assert [a["size"]["value"] for a in stored(sandbox, ticket_id)][1:] == [str(s) for s in sizes]

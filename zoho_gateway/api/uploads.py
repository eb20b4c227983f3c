"""``multipart/form-data`` read as it streams in: files spooled to temporary files, capped, typed from their bytes.

- Each part's bytes go to a ``SpooledTemporaryFile`` as they arrive (in memory up to ``SPOOL_IN_MEMORY``, then
  on disk), 64 KiB at a time: a file is never held whole in memory. The per-file cap
  (``GATEWAY_MAX_ATTACHMENT_BYTES``), the number of files (``MAX_FILES``) and the body's total
  (``total_cap``) are counted while reading; past one of them reading stops and the answer is 413.
- The 1 MB JSON limit (``MAX_CONTENT_LENGTH``) does not apply to these bodies; the text parts (the
  ``ticket`` of ``POST /requests``) have it as their own cap.
- A file's type is judged from its bytes (:func:`sniff`), never from its name or the type the client
  claims, and checked against ``GATEWAY_ATTACHMENT_TYPES`` (415 naming the type found).
- File names are made safe (:func:`safe_name`): no path, no control or format characters, bounded, never empty.
"""

from __future__ import annotations

import codecs
import os
import re
import tempfile
import unicodedata
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import IO, BinaryIO, cast

import puremagic
from flask import request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from ..errors import (
    AttachmentTooLarge,
    InvalidMultipart,
    MultipartRequired,
    UnsupportedAttachmentType,
)
from ..zoho.model import Upload

#: The name of every file part.
FILE_PART = "file"
#: Files one form may carry.
MAX_FILES = 10
#: A form's whole body may hold this many maximum-size files (and its text parts): 30 MiB by default.
TOTAL_FILES_OF_MAX_SIZE = 3
#: Bytes read from the request at a time.
CHUNK = 64 * 1024
#: A file stays in memory up to this size, then moves to an (unlinked) temporary file.
SPOOL_IN_MEMORY = 64 * 1024
#: The bytes of a file's start kept for :func:`sniff` (magic numbers sit in the first few hundred).
HEAD = 8 * 1024
#: Characters a file name keeps at most (Zoho's own limit is unpublished; 255 bytes is the usual file system's).
MAX_NAME = 150
#: An extension kept whole when a long name is cut: a dot and up to 16 letters or digits.
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,16}\Z")
#: Characters no file name on Windows may hold; replaced, since technicians download to such machines.
_WINDOWS_FORBIDDEN = str.maketrans({c: "_" for c in '<>:"|?*'})
_WINDOWS_RESERVED = re.compile(r"(CON|PRN|AUX|NUL|COM[1-9]|LPT[1-9])(\..*)?\Z", re.IGNORECASE)
#: Names a file judged plain text may not end in: a browser or a shell would run it rather than show it.
_ACTIVE_TEXT_EXTENSIONS = frozenset(
    {".htm", ".html", ".xhtml", ".shtml", ".svg", ".js", ".mjs", ".hta", ".bat", ".cmd", ".ps1", ".vbs", ".sh"}
)
#: Extensions given to a nameless file, by the type found.
_EXTENSIONS = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "application/pdf": ".pdf",
    "text/plain": ".txt",
    "application/zip": ".zip",
}

OCTET_STREAM = "application/octet-stream"
OLE2 = "application/x-ole-storage"
#: Office Open XML: (the part that names the kind, the type, the type when it holds macros).
_OOXML = (
    (
        "word/document.xml",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.ms-word.document.macroEnabled.12",
    ),
    (
        "xl/workbook.xml",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.ms-excel.sheet.macroEnabled.12",
    ),
    (
        "ppt/presentation.xml",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.ms-powerpoint.presentation.macroEnabled.12",
    ),
)
#: A text file is plain text unless puremagic is at least this sure of another format (PDF, HTML, SVG, RTF:
#: 0.4 to 0.6); weaker matches are two letters that happen to open a text ("BM" for a bitmap: 0.2).
_TEXT_FORMAT_CONFIDENCE = 0.4


def total_cap(max_file_bytes: int, text_bytes: int) -> int:
    """The most bytes one form may have: ``TOTAL_FILES_OF_MAX_SIZE`` full files, its text parts, and headers."""
    return TOTAL_FILES_OF_MAX_SIZE * max_file_bytes + text_bytes + 64 * 1024


def safe_name(raw: str | None, content_type: str) -> str:
    """A file name that is safe to store and show: the last path segment, NFC, without control or format
    characters (no bidi overrides), Windows-safe, at most ``MAX_NAME`` characters (the extension kept),
    never empty, never hidden; a file judged plain text never ends in an extension a browser would run.
    """
    name = unicodedata.normalize("NFC", raw or "")
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(" " if c.isspace() else c for c in name if unicodedata.category(c) not in ("Cc", "Cf", "Cs"))
    name = " ".join(name.translate(_WINDOWS_FORBIDDEN).split()).lstrip(".").rstrip(". ")
    if _WINDOWS_RESERVED.match(name):
        name = f"_{name}"
    if content_type == "text/plain" and os.path.splitext(name)[1].lower() in _ACTIVE_TEXT_EXTENSIONS:
        name += ".txt"
    if len(name) > MAX_NAME:
        extension = _EXTENSION.search(name)
        tail = extension.group(0) if extension else ""
        name = name[: MAX_NAME - len(tail)].rstrip(". ") + tail
    return name or f"attachment{_EXTENSIONS.get(content_type, '')}"


def _zip_type(stream: IO[bytes]) -> str:
    """A zip container's type from the names inside: OpenDocument (its ``mimetype`` entry), Office Open XML
    (``[Content_Types].xml`` and the main part; macro-enabled when it holds ``vbaProject.bin``), else zip.
    Reads the central directory only (and the tiny ``mimetype`` entry): nothing is inflated wholesale."""
    try:
        with zipfile.ZipFile(stream) as archive:
            names = set(archive.namelist())
            if "mimetype" in names and archive.getinfo("mimetype").file_size <= 100:
                declared = archive.read("mimetype").decode("ascii", "replace").strip()
                if re.fullmatch(r"application/vnd\.oasis\.opendocument\.[a-z.-]{1,40}", declared):
                    return declared
            if "[Content_Types].xml" in names:
                macros = any(name.lower().endswith("vbaproject.bin") for name in names)
                for part, plain, with_macros in _OOXML:
                    if part in names:
                        return with_macros if macros else plain
            return "application/zip"
    except (zipfile.BadZipFile, zipfile.LargeZipFile, RuntimeError, ValueError, EOFError, OSError):
        return OCTET_STREAM  # a zip's signature, but not a readable zip (cut short, encrypted entry)
    finally:
        stream.seek(0)


def _magic_type(head: bytes, *, text: bool) -> str | None:
    """puremagic's best-named type for ``head``; for text, only a format it is fairly sure of (see above)."""
    try:
        matches = puremagic.magic_string(head)
    except (puremagic.PureError, ValueError):
        return None
    for match in matches:
        if match.mime_type and (not text or match.confidence >= _TEXT_FORMAT_CONFIDENCE):
            return str(match.mime_type)
    return None


def sniff(head: bytes, stream: IO[bytes], *, text: bool) -> str:
    """The file's media type judged from its bytes: ``head`` (its first ``HEAD`` bytes), the whole file in
    ``stream`` (positioned at 0, left there) for containers, and ``text`` (valid UTF-8 without NUL, checked
    while it streamed). Zip containers by their inner names; OLE2 (legacy .doc/.xls/.ppt, which their bytes
    do not tell apart without parsing) as ``application/x-ole-storage``; else puremagic's magic numbers;
    plain text is ``text/plain``; anything unrecognised ``application/octet-stream``."""
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _zip_type(stream)
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return OLE2
    found = _magic_type(head, text=text) if head else None
    if found:
        return found
    return "text/plain" if text else OCTET_STREAM


def _spool() -> BinaryIO:
    """A file's spool, closed by ``Form.close``."""
    return cast(BinaryIO, tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY))  # noqa: SIM115


@dataclass
class Received:
    """A file part as it arrived: the client's name for it, and its bytes spooled (see ``write``)."""

    client_name: str | None
    limit: int
    index: int
    file: BinaryIO = field(default_factory=lambda: _spool())
    size: int = 0
    head: bytearray = field(default_factory=bytearray)
    text: bool = True
    content_type: str = OCTET_STREAM
    name: str = ""
    _utf8: codecs.IncrementalDecoder = field(default_factory=lambda: codecs.getincrementaldecoder("utf-8")())

    @property
    def shown(self) -> str:
        """The file as an error message names it: its name as sent (cut), or its place in the form."""
        return (self.client_name or "")[:MAX_NAME] or f"#{self.index + 1}"

    def write(self, data: bytes) -> None:
        """Count, keep the head, follow the UTF-8 check, spool; AttachmentTooLarge past ``limit`` (reading stops)."""
        self.size += len(data)
        if self.size > self.limit:
            raise AttachmentTooLarge(
                f"The file {self.shown!r} is over {self.limit} bytes",
                limit="file_bytes",
                max_bytes=self.limit,
                file=self.shown,
                file_index=self.index,
            )
        if len(self.head) < HEAD:
            self.head += data[: HEAD - len(self.head)]
        if self.text:
            try:
                self._utf8.decode(data)
                self.text = b"\0" not in data
            except UnicodeDecodeError:
                self.text = False
        self.file.write(data)

    def finish(self, allowed: frozenset[str]) -> None:
        """The part ended: judge its type (UnsupportedAttachmentType when not allowed) and name it."""
        if self.text:
            try:
                self._utf8.decode(b"", final=True)
            except UnicodeDecodeError:
                self.text = False
        self.file.seek(0)
        self.content_type = sniff(bytes(self.head), self.file, text=self.text)
        if self.content_type.lower() not in allowed:
            raise UnsupportedAttachmentType(
                f"The file {self.shown!r} is {self.content_type} (judged from its bytes), which may not be attached",
                detected_type=self.content_type,
                file=self.shown,
                file_index=self.index,
            )
        self.name = safe_name(self.client_name, self.content_type)

    def upload(self) -> Upload:
        """The file for ``HelpdeskService.attach``, read from its start."""
        self.file.seek(0)
        return Upload(name=self.name, content_type=self.content_type, stream=self.file, size=self.size)


@dataclass
class Form:
    """A multipart body read whole: its files (in order) and its text parts (raw bytes, by name).

    A context manager: leaving it closes the spooled files."""

    files: list[Received] = field(default_factory=list)
    texts: dict[str, bytes] = field(default_factory=dict)

    def uploads(self) -> list[Upload]:
        return [received.upload() for received in self.files]

    def close(self) -> None:
        for received in self.files:
            received.file.close()

    def __enter__(self) -> Form:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def is_multipart() -> bool:
    """Whether this request says its body is ``multipart/form-data``."""
    return request.mimetype == "multipart/form-data"


def read_form(*, max_file_bytes: int, allowed_types: frozenset[str], texts: Mapping[str, int]) -> Form:
    """This request's ``multipart/form-data`` body: ``file`` parts (at most ``MAX_FILES``, each at most
    ``max_file_bytes``, each of a type in ``allowed_types``) and the text parts named in ``texts`` (each at
    most its bytes, at most once). Reads as it parses; stops at the first breach.

    Raises MultipartRequired (415) for another content type, InvalidMultipart (400) for a malformed body or
    a part of another name, AttachmentTooLarge (413), UnsupportedAttachmentType (415); Werkzeug's 400 when
    the body ends before its Content-Length. The spooled files are closed when it raises.
    """
    if not is_multipart():
        raise MultipartRequired("Send files as multipart/form-data with one or more 'file' parts")
    boundary = request.mimetype_params.get("boundary", "")
    if not boundary or len(boundary) > 200:
        raise InvalidMultipart("The Content-Type has no usable boundary parameter")
    text_bytes = sum(texts.values())
    cap = total_cap(max_file_bytes, text_bytes)
    if request.content_length is not None and request.content_length > cap:
        raise AttachmentTooLarge(f"The body is over {cap} bytes", limit="total_bytes", max_bytes=cap)
    # The JSON limit (MAX_CONTENT_LENGTH) is not this body's: its own caps are counted below, and Werkzeug's
    # limit sits one read above them so that ours (with its precise answer) is always met first.
    request.max_content_length = cap + CHUNK
    form = Form()
    try:
        _parse(form, boundary.encode("latin-1"), cap, max_file_bytes, allowed_types, texts)
    except BaseException:
        form.close()
        raise
    return form


def _parse(
    form: Form, boundary: bytes, cap: int, max_file_bytes: int, allowed: frozenset[str], texts: Mapping[str, int]
) -> None:
    # Only the part headers and preamble can accumulate in the decoder (data is drained event by event):
    # its memory limit bounds them.
    decoder = MultipartDecoder(boundary, max_form_memory_size=max(max(texts.values(), default=0), CHUNK) + CHUNK)
    stream = request.stream
    read = 0
    sink: Received | bytearray | None = None
    text_name = ""
    ended = False
    while not ended:
        chunk = stream.read(CHUNK)
        read += len(chunk)
        if read > cap:
            raise AttachmentTooLarge(f"The body is over {cap} bytes", limit="total_bytes", max_bytes=cap)
        try:
            decoder.receive_data(chunk or None)
            event = decoder.next_event()
            while not isinstance(event, NeedData):
                if isinstance(event, Epilogue):
                    ended = True
                    break
                if isinstance(event, (Field, File)):
                    sink, text_name = _start_part(form, event.name, event, max_file_bytes, texts)
                elif isinstance(event, Data) and sink is not None:
                    if isinstance(sink, Received):
                        sink.write(event.data)
                        if not event.more_data:
                            sink.finish(allowed)
                    else:
                        sink += event.data
                        if len(sink) > texts[text_name]:
                            raise AttachmentTooLarge(
                                f"The {text_name!r} part is over {texts[text_name]} bytes",
                                limit="text_bytes",
                                max_bytes=texts[text_name],
                            )
                        if not event.more_data:
                            form.texts[text_name] = bytes(sink)
                event = decoder.next_event()
        except RequestEntityTooLarge:
            raise InvalidMultipart("A part's headers (or the preamble) are far too long") from None
        except ValueError as exc:
            raise InvalidMultipart(f"The multipart body is malformed: {exc}") from None
        if not chunk and not ended:
            raise InvalidMultipart("The multipart body ended before its closing boundary")


def _start_part(
    form: Form, name: str | None, event: Field | File, max_file_bytes: int, texts: Mapping[str, int]
) -> tuple[Received | bytearray, str]:
    """The sink of a new part; InvalidMultipart for a part we do not take, AttachmentTooLarge past MAX_FILES."""
    if name == FILE_PART:
        if len(form.files) >= MAX_FILES:
            raise AttachmentTooLarge(f"At most {MAX_FILES} files per request", limit="files", max_files=MAX_FILES)
        filename = event.filename if isinstance(event, File) else None
        received = Received(filename, max_file_bytes, len(form.files))
        form.files.append(received)
        return received, ""
    if name is not None and name in texts and name not in form.texts:
        return bytearray(), name
    wanted = " and ".join(f"'{n}'" for n in (*texts, FILE_PART))
    shown = (name or "")[:64]
    problem = f"a second {shown!r} part" if name in texts else f"a part named {shown!r}"
    raise InvalidMultipart(f"The form has {problem}; send {wanted} parts only")

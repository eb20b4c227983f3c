"""A ``multipart/form-data`` body that is read in chunks from its files as it is sent, never held whole.

Part headers are formatted by urllib3's ``RequestField`` (the same code ``requests`` uses for ``files=``):
the file name is quoted as browsers do, with ``"``, ``\\`` and line breaks escaped. The length is known
before a byte is read, from the sizes the caller states, so the body goes out with a ``Content-Length``.

Not requests-toolbelt's ``MultipartEncoder``: it guesses each file's length itself, by copying a
``BytesIO`` whole (``getvalue()``) or by ``fstat`` of the file (its whole size, whatever the position),
and it has no type hints.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import BinaryIO

from urllib3.fields import RequestField

#: What one read of a file asks for when the reader asks for everything (``read()``).
CHUNK = 64 * 1024


class ShortFile(ValueError):
    """A file ended before the size its caller stated: the body would not match its Content-Length."""


class _Part:
    """A file's bytes: at most ``size`` from ``stream``, and exactly that many."""

    def __init__(self, name: str, stream: BinaryIO, size: int) -> None:
        self.name = name
        self.stream = stream
        self.left = size

    def read(self, size: int) -> bytes:
        if self.left <= 0:
            return b""
        data = self.stream.read(min(size, self.left))
        if not data:
            raise ShortFile(f"the file {self.name!r} ended {self.left} bytes short of its stated size")
        self.left -= len(data)
        return data


class MultipartStream:
    """The body of ``fields`` (text fields, first) and ``files`` ((field name, file name, content type,
    binary stream, size in bytes)), in order. ``content_type`` and ``length`` are known at once.

    ``read(size)`` gives at most ``size`` bytes (``CHUNK`` at a time for ``read()``) and ``b""`` at the end;
    it reads each stream from where it stands, once. Raises ShortFile when a stream ends early.
    """

    def __init__(
        self,
        fields: Sequence[tuple[str, str]],
        files: Sequence[tuple[str, str, str, BinaryIO, int]],
        *,
        boundary: str | None = None,
    ) -> None:
        self.boundary = boundary or secrets.token_hex(16)
        self.content_type = f"multipart/form-data; boundary={self.boundary}"
        dash = f"--{self.boundary}\r\n".encode()
        self._segments: list[bytes | _Part] = []
        for name, value in fields:
            field = RequestField(name=name, data=value)
            field.make_multipart()
            self._segments += [dash + field.render_headers().encode(), value.encode(), b"\r\n"]
        for name, filename, content_type, stream, size in files:
            field = RequestField(name=name, data=b"", filename=filename)
            field.make_multipart(content_type=content_type)
            self._segments += [dash + field.render_headers().encode(), _Part(filename, stream, size), b"\r\n"]
        self._segments.append(f"--{self.boundary}--\r\n".encode())
        self.length = sum(len(s) if isinstance(s, bytes) else s.left for s in self._segments)
        self._at = 0  # the segment being read
        self._offset = 0  # bytes of it already given (bytes segments only)

    def read(self, size: int = -1, /) -> bytes:
        wanted = CHUNK if size is None or size < 0 else size
        out: list[bytes] = []
        while wanted > 0 and self._at < len(self._segments):
            segment = self._segments[self._at]
            if isinstance(segment, bytes):
                piece = segment[self._offset : self._offset + wanted]
                self._offset += len(piece)
                if self._offset >= len(segment):
                    self._at, self._offset = self._at + 1, 0
            else:
                piece = segment.read(wanted)
                if segment.left <= 0:
                    self._at += 1
            out.append(piece)
            wanted -= len(piece)
        return b"".join(out)

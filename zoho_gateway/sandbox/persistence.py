"""The optional state file: the sandbox's tickets, id sequence and access tokens as one JSON document.

Written whole and atomically (a temporary file in the same directory, fsync, ``os.replace``), so a reader
or a crash mid-write sees either the previous document or the new one, never half of each.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1


class StateFileError(ValueError):
    """The state file exists but cannot be read as a sandbox world (names the file and the problem)."""


class StateFile:
    """Reads and writes one state file; the parent directory is created on the first write."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def load(self) -> dict[str, Any] | None:
        """The saved document, or None when the file does not exist.

        Raises StateFileError when the file is unreadable, not JSON, or of another format version: a
        world silently started empty would hide the very tickets the file exists to keep.
        """
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateFileError(f"cannot read sandbox state file {self.path}: {exc.strerror}") from exc
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise StateFileError(
                f"sandbox state file {self.path} is not JSON ({exc}); move it away to start empty"
            ) from exc
        if not isinstance(document, dict) or document.get("version") != FORMAT_VERSION:
            raise StateFileError(
                f"sandbox state file {self.path} is not a version-{FORMAT_VERSION} sandbox world; "
                "move it away to start empty"
            )
        return document

    def save(self, text: str) -> None:
        """Replace the file's content with ``text`` atomically (mode 600: it holds access tokens)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp_name, self.path)
        except BaseException:
            # Never leave a stray temporary file behind when the write or the rename fails.
            try:
                os.unlink(tmp_name)
            except FileNotFoundError:
                pass
            raise

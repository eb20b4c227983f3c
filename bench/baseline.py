"""Another revision of the gateway, checked out into a directory of its own so that it can be served side by side.

``git archive REV`` of this repository, unpacked under the bench's temporary directory: the revision's own
``wsgi.py``, ``gunicorn.conf.py``, ``logging.ini`` and package, run with this checkout's virtualenv (so a
revision that needs other packages than the ones installed cannot be compared this way).
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


class BaselineError(RuntimeError):
    """The revision is unknown to git, or cannot be unpacked."""


@dataclass(frozen=True)
class Checkout:
    """``rev`` as given, the commit it names, its subject line, where it is unpacked and its HTTP client."""

    rev: str
    commit: str
    subject: str
    root: Path
    http_client: str

    @property
    def short(self) -> str:
        return self.commit[:7]


def _git(*args: str) -> bytes:
    done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, check=False)
    if done.returncode != 0:
        raise BaselineError(f"git {' '.join(args)}: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def http_client(root: Path) -> str:
    """Which library a checkout's ``zoho/transport.py`` calls Zoho with: "requests" or "urllib3"."""
    try:
        text = (root / "zoho_gateway" / "zoho" / "transport.py").read_text()
    except OSError:
        return "?"
    return "requests" if "\nimport requests\n" in text else "urllib3"


def checkout(rev: str, into: Path) -> Checkout:
    """Unpack ``rev`` (any git revision: ``5bc0d84^``, a tag, a branch) into ``into``/<commit>."""
    commit = _git("rev-parse", "--verify", f"{rev}^{{commit}}").decode().strip()
    subject = _git("log", "-1", "--format=%s", commit).decode().strip()
    root = into / f"baseline-{commit[:12]}"
    root.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(_git("archive", "--format=tar", commit))) as archive:
        archive.extractall(root, filter="data")
    return Checkout(rev, commit, subject, root, http_client(root))

"""A Zoho simulator (Accounts OAuth + ServiceDesk Plus Cloud API v3) with fault injection and counters.

SDP v3 under ``/api/v3`` and ``/app/<portal>/api/v3``: requests (create, get, update, close, list with
``list_info``/``search_criteria``), notes, resolutions, ``_uploads``/attachments and the meta lists.
Accounts: ``/oauth/v2/token``, ``/oauth/v2/token/revoke`` and an auto-approving ``/oauth/v2/auth``.
Control API under ``/_sandbox/``. With a state file, tickets and tokens survive a restart.
"""

from __future__ import annotations

from .app import create_sandbox_app
from .server import SandboxServer
from .settings import SandboxSettings

__all__ = ["SandboxServer", "SandboxSettings", "create_sandbox_app"]

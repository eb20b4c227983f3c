"""A Zoho simulator (Accounts OAuth, ServiceDesk Plus Cloud API v3, Zoho Desk API v1) with faults and counters.

SDP v3 under ``/api/v3`` and ``/app/<portal>/api/v3``: requests (create, get, update, close, list with
``list_info``/``search_criteria``), notes, resolutions, ``_uploads``/attachments and the meta lists.
Accounts: ``/oauth/v2/token``, ``/oauth/v2/token/revoke`` and an auto-approving ``/oauth/v2/auth``.
Control API under ``/_sandbox/``. With a state file, tickets and tokens survive a restart.

Several portals at once: the default one above, and others declared at start (``SANDBOX_PORTALS``,
``--portal``) or with ``POST /_sandbox/portals``, each at ``/t/<name>/api/v3`` (SDP) or
``/t/<name>/api/v1`` (Zoho Desk) with its own tickets, faults, counters and settings, signing in through
an account at ``/a/<account>/oauth/v2/token`` (see ``app`` for the URL scheme, ``tenancy`` for the model).
"""

from __future__ import annotations

from .app import create_sandbox_app
from .server import SandboxServer
from .settings import SandboxSettings

__all__ = ["SandboxServer", "SandboxSettings", "create_sandbox_app"]

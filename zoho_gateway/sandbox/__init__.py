"""A Zoho simulator (Accounts OAuth + ServiceDesk Plus Cloud API v3) with fault injection and counters."""

from __future__ import annotations

from .app import create_sandbox_app
from .server import SandboxServer
from .settings import SandboxSettings

__all__ = ["SandboxServer", "SandboxSettings", "create_sandbox_app"]

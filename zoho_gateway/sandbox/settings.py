"""The simulator's knobs: fake OAuth credentials, token lifetime and throttle, latency, create status."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# The settings of an OAuth account; every other field belongs to a portal (or, for the last two, to the process).
ACCOUNT_FIELDS = (
    "client_id",
    "client_secret",
    "refresh_token",
    "token_ttl",
    "token_limit",
    "token_window",
    "token_cap",
    "throttle_http_status",
    "api_domain",
)
FIXED_FIELDS = frozenset({"state_file", "portals"})


class SettingsError(ValueError):
    """A settings change named an unknown field or gave a value of the wrong type."""


@dataclass(frozen=True)
class SandboxSettings:
    """Immutable configuration of one simulated Zoho tenant.

    The credentials are deliberately fake-looking so that they can never be mistaken for real ones.
    ``token_limit`` mints per ``token_window`` seconds mirror Zoho's per-refresh-token throttle.
    ``token_cap`` > 0 keeps at most that many live access tokens per account: minting one more silently
    invalidates the oldest (Zoho's limit is about 15; 0, the default, keeps every token).
    ``latency_ms`` is added to every SDP API call (never to token calls).
    ``create_http_status`` is 201 by default; the vendor docs also show 200, so it is switchable.
    ``max_upload_bytes`` caps each file of an ``_uploads`` call (SDP's own cap is unpublished).
    ``state_file`` (a path, or None for memory only) is where the world keeps its tickets and tokens
    across restarts; it is fixed when the world is created and cannot be changed through ``updated``.

    In a sandbox serving several portals (see ``portals``), the fields in ``ACCOUNT_FIELDS`` belong to
    a portal's OAuth account (shared by every portal on that account) and the others to the portal.
    ``org_id`` is a Zoho Desk portal's organisation id (unused by ServiceDesk Plus portals).
    ``portals`` declares extra portals at start, each ``"name:service[:account]"`` (service ``sdp`` or
    ``desk``; the account defaults to the portal's name); like ``state_file`` it is fixed at start.
    """

    client_id: str = "sandbox-client-id"
    client_secret: str = "sandbox-client-secret"
    refresh_token: str = "sandbox-refresh-token"
    token_ttl: int = 3600
    token_limit: int = 10
    token_window: int = 600
    token_cap: int = 0
    throttle_http_status: int = 200
    latency_ms: int = 0
    create_http_status: int = 201
    api_domain: str = "https://www.zohoapis.com"
    max_upload_bytes: int = 20 * 1024 * 1024
    org_id: str = ""
    state_file: str | None = None
    portals: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SandboxSettings:
        """Defaults overridden by SANDBOX_LATENCY_MS, SANDBOX_TOKEN_TTL, SANDBOX_STATE_FILE and SANDBOX_PORTALS.

        ``SANDBOX_STATE_FILE`` empty or unset keeps the world in memory (the default, and what tests use).
        ``SANDBOX_PORTALS`` is a comma list of extra portals, e.g. ``hr:sdp,support:desk``.
        """
        env = os.environ if environ is None else environ
        changes: dict[str, Any] = {}
        for variable, field in (("SANDBOX_LATENCY_MS", "latency_ms"), ("SANDBOX_TOKEN_TTL", "token_ttl")):
            raw = env.get(variable, "").strip()
            if raw:
                try:
                    changes[field] = int(raw)
                except ValueError as exc:
                    raise SettingsError(f"{variable} must be an integer, got {raw!r}") from exc
        state_file = env.get("SANDBOX_STATE_FILE", "").strip() or None
        portals = tuple(item.strip() for item in env.get("SANDBOX_PORTALS", "").split(",") if item.strip())
        return cls(state_file=state_file, portals=portals).updated(changes)

    def with_portals(self, portals: tuple[str, ...]) -> SandboxSettings:
        """A copy declaring ``portals`` (``"name:service[:account]"`` each) at start."""
        return dataclasses.replace(self, portals=tuple(portals))

    def with_state_file(self, state_file: str | os.PathLike[str] | None) -> SandboxSettings:
        """A copy that keeps its world in ``state_file`` (None or "": memory only)."""
        return dataclasses.replace(self, state_file=os.fspath(state_file) if state_file else None)

    def updated(self, changes: Mapping[str, Any]) -> SandboxSettings:
        """A copy with ``changes`` applied; raises SettingsError naming the first bad field."""
        known = {field.name: field for field in dataclasses.fields(self)}
        clean: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in known:
                raise SettingsError(f"unknown setting {name!r}")
            if name in FIXED_FIELDS:
                raise SettingsError(f"setting {name!r} is fixed when the sandbox starts")
            expected = int if known[name].type in ("int", int) else str
            if expected is int:
                if isinstance(value, bool) or not isinstance(value, int):
                    raise SettingsError(f"setting {name!r} must be an integer")
                if value < 0:
                    raise SettingsError(f"setting {name!r} must not be negative")
                if name.endswith("_http_status") and not 100 <= value <= 599:
                    raise SettingsError(f"setting {name!r} must be an HTTP status code")
            elif not isinstance(value, str):
                raise SettingsError(f"setting {name!r} must be a string")
            clean[name] = value
        return dataclasses.replace(self, **clean)

    def as_dict(self) -> dict[str, Any]:
        """The settings as a JSON-ready mapping."""
        values = dataclasses.asdict(self)
        values["portals"] = list(self.portals)
        return values

    def account_part(self) -> dict[str, Any]:
        """The fields that belong to the OAuth account (``ACCOUNT_FIELDS``)."""
        return {name: getattr(self, name) for name in ACCOUNT_FIELDS}

    def combined(self, account: SandboxSettings) -> SandboxSettings:
        """These (portal) settings with the account fields taken from ``account``."""
        return dataclasses.replace(self, **account.account_part())

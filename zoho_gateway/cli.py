"""``flask zoho ...``: operator commands (placeholder until the CLI is built)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the ``zoho`` command group."""

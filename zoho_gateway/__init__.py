"""zoho-gateway: a small, stable HTTP+JSON API in front of Zoho ServiceDesk Plus Cloud (API v3)."""

from __future__ import annotations

from collections.abc import Mapping

from flask import Flask

from .config import Config, ConfigError, load_config


def create_app(env: Mapping[str, str] | None = None, *, sandbox: bool | None = None, for_cli: bool = False) -> Flask:
    """Build the gateway app. ``env`` replaces ``os.environ`` as the source of settings (tests).

    Raises ConfigError (one line naming the setting) when a setting is missing or malformed.
    Nothing happens at import time; every part hooks in here. ``for_cli`` relaxes the settings that the
    ``flask zoho`` commands exist to produce (see ``load_config``).
    """
    from . import cli
    from .api import access, cors, errors, health, openapi, tickets
    from .gateway import EXTENSION_KEY, build_gateway
    from .logs import configure_logging

    config: Config = load_config(env, sandbox=sandbox, for_cli=for_cli)
    configure_logging(config.log_file)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.extensions[EXTENSION_KEY] = build_gateway(config)
    errors.init_app(app)
    access.init_app(app)
    app.register_blueprint(tickets.bp)
    app.register_blueprint(health.bp)
    openapi.init_app(app)
    cors.init_app(app, config.cors_origins)
    cli.init_app(app)
    return app


__all__ = ["ConfigError", "create_app"]

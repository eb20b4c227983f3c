"""zoho-gateway: a small, stable HTTP+JSON API in front of Zoho ServiceDesk Plus Cloud (API v3) and Zoho Desk (API v1),
one portal or several (``GATEWAY_PORTALS_FILE``)."""

from __future__ import annotations

import configparser
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .config import Config, ConfigError, load_config

if TYPE_CHECKING:
    # Flask is imported when an app is built, not with the package: gunicorn.conf.py reads its settings
    # through zoho_gateway.config before gevent patches the standard library.
    from flask import Flask


def create_app(env: Mapping[str, str] | None = None, *, sandbox: bool | None = None, for_cli: bool = False) -> Flask:
    """Build the gateway app. ``env`` replaces ``os.environ`` as the source of settings (tests).

    Raises ConfigError (one line naming the setting) when a setting is missing or malformed.
    Nothing happens at import time; every part hooks in here. ``for_cli`` relaxes the settings that the
    ``flask zoho`` commands exist to produce (see ``load_config``).
    """
    from flask import Flask

    from . import cli
    from .api import access, attachments, cors, errors, health, lifecycle, meta, openapi, portals, tickets
    from .gateway import EXTENSION_KEY, build_gateway

    config: Config = load_config(env, sandbox=sandbox, for_cli=for_cli)
    _configure_logging(config)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    gateway = build_gateway(config)
    # Scrapes aggregate every worker's files only where the Config says they are (PROMETHEUS_MULTIPROC_DIR).
    gateway.metrics.multiprocess_dir = config.metrics_dir
    app.extensions[EXTENSION_KEY] = gateway
    errors.init_app(app)
    access.init_app(app)
    # Every ticket route twice: for the calling key's default portal, and under /portals/<portal>/ for any
    # portal (api/access.py picks the portal's bundle and keeps <portal> out of the views' arguments). A new
    # blueprint of ticket routes goes in this list, and so gets its /portals/<portal>/ mirror.
    ticket_blueprints = [tickets.bp, lifecycle.bp, meta.bp, attachments.bp]
    for blueprint in ticket_blueprints:
        app.register_blueprint(blueprint)
        app.register_blueprint(blueprint, url_prefix="/portals/<portal>", name=f"portals_{blueprint.name}")
    app.register_blueprint(health.bp)
    app.register_blueprint(portals.bp)
    openapi.init_app(app)
    cors.init_app(app, config.cors_origins)
    cli.init_app(app)
    return app


def _configure_logging(config: Config) -> None:
    """Apply the logging configuration; a file that cannot be used is a ConfigError naming its setting."""
    from .logs import configure_logging

    try:
        configure_logging(config.log_file, config.logging_ini)
    except OSError as exc:
        # The ini file was checked by load_config: what fails to open here is the log file or its directory.
        raise ConfigError(f"GATEWAY_LOG_FILE cannot be written ({exc.strerror}): {config.log_file!r}") from None
    except (configparser.Error, KeyError, ValueError, TypeError, AttributeError, ImportError, RuntimeError) as exc:
        # What logging.config.fileConfig raises for a file it cannot apply: a missing section is a bare KeyError.
        raise ConfigError(
            f"GATEWAY_LOGGING_INI is not a usable logging configuration ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:200]}): {config.logging_ini!r}"
        ) from None


__all__ = ["ConfigError", "create_app"]

"""Which scope each route needs: declared on its view with ``@requires(scope)``, checked before the view runs.

A key holds scopes (``apikeys.SCOPES``); a request whose key lacks its route's scope is refused with 403
``forbidden`` naming the scope, before any upstream call. A keyed route whose view declares nothing needs
``admin``: a route forgotten here is closed, not open (tests/test_scopes.py lists every route's scope).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ..apikeys import SCOPES

F = TypeVar("F", bound=Callable[..., Any])

_ATTRIBUTE = "required_scope"
#: What a keyed view that declares no scope needs.
UNDECLARED = "admin"


def requires(scope: str) -> Callable[[F], F]:
    """Mark a view as needing ``scope`` (one of ``apikeys.SCOPES``); the view itself is returned unchanged."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    def mark(view: F) -> F:
        setattr(view, _ATTRIBUTE, scope)
        return view

    return mark


def required_scope(view: Callable[..., Any]) -> str:
    """The scope ``view`` declared with :func:`requires`, or ``UNDECLARED``."""
    scope: str = getattr(view, _ATTRIBUTE, UNDECLARED)
    return scope

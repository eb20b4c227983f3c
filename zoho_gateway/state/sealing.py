"""Optional encryption at rest for secrets kept in the shared store (Fernet, from ``GATEWAY_STATE_KEY``)."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken


class SealError(Exception):
    """A sealed value cannot be opened: it was sealed with another key, or it was not sealed at all."""


class Sealer:
    """Seals and opens short strings. Without a key it passes values through (encryption is optional)."""

    def __init__(self, key: str | None) -> None:
        """Raises ValueError when ``key`` is not a Fernet key (32 url-safe base64-encoded bytes)."""
        self._fernet = Fernet(key.encode()) if key else None

    @property
    def enabled(self) -> bool:
        return self._fernet is not None

    def seal(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode() if self._fernet else value

    def open(self, value: str, sealed: bool) -> str:
        """Recover a value stored by :meth:`seal`; ``sealed`` says whether it was stored encrypted."""
        if not sealed:
            if self._fernet is not None:
                raise SealError("the stored value is not encrypted but GATEWAY_STATE_KEY is set")
            return value
        if self._fernet is None:
            raise SealError("the stored value is encrypted but GATEWAY_STATE_KEY is not set")
        try:
            return self._fernet.decrypt(value.encode()).decode()
        except InvalidToken:
            raise SealError("the stored value was encrypted with another GATEWAY_STATE_KEY") from None

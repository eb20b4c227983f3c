"""Request policies between the API and the ticket service: read cache, idempotent creates, client rate limits.

They know neither Flask nor Zoho's wire format: each wraps ticket-service calls (or counts requests) over
the shared store, so the layers read ``api/ -> policies/ -> zoho/ -> state/``.
"""

"""The ticket service: the one place that knows the order transform ▸ client ▸ parser.

Views and policies call ``create`` and ``get`` with the gateway's own types (``zoho.model``) and never
see Zoho's field names. Every method raises only ``zoho_gateway.errors`` exceptions.
"""

from __future__ import annotations

from .client import ServiceDeskClient
from .model import NewTicket, Ticket
from .parser import simplify
from .transform import to_input_data


class TicketService:
    """Tickets in one ServiceDesk Plus portal. Thread-safe (the client is)."""

    def __init__(self, client: ServiceDeskClient) -> None:
        self._client = client

    def create(self, ticket: NewTicket) -> tuple[str, Ticket]:
        """Create ``ticket`` in Zoho; its id and the ticket as Zoho now holds it.

        Raises ZohoRejected (a value the client can fix), ZohoUnavailable (nothing was sent),
        ZohoOutcomeUnknown (sent, no answer: the ticket may exist), ZohoAuthFailed, ZohoBadResponse,
        ZohoTokenUnavailable. Never re-sends a create that may have arrived.
        """
        entity = self._client.create_request(to_input_data(ticket))
        simplified = simplify(entity)
        return simplified["ticket_id"], simplified

    def get(self, ticket_id: str) -> Ticket:
        """The ticket with id ``ticket_id`` (digits, validated by the caller). Raises TicketNotFound and the above."""
        return simplify(self._client.get_request(ticket_id))

"""The Zoho Desk v1 adapter: ``DeskService`` implements ``HelpdeskService`` for one Desk portal.

``judge`` maps Desk's answers (``{"errorCode", "message"}``) onto the gateway's errors, ``wire`` builds Desk's
request bodies and reads its records, ``client`` owns transport (orgId, token, retries), ``service`` the order.
"""

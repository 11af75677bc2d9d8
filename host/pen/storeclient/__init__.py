"""The store side of a payment: StoreClient (pay, check, receipts, resume)
over any transport (pen.transport), with a durable outbox."""
from .client import StoreClient, Spent, NoAnswer, receipt_problem  # noqa: F401
from .outbox import Outbox, Payment, SIGNED, SENT, ACCOUNTED  # noqa: F401

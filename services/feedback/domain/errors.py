"""Domain errors of the feedback service.

Every error names the offending field so the HTTP layer can render an
RFC 9457 problem (``invalid-params``) and the consumer can put a precise
reason on a dead-lettered message without parsing message strings.
"""

from __future__ import annotations


class FeedbackDomainError(Exception):
    """Base class: anything the feedback domain rejects on purpose."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidValue(FeedbackDomainError):
    """A value is out of range or of the wrong kind; ``field`` says which."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", field=field)


class IllegalTransition(FeedbackDomainError):
    """A ticket was asked to move to a status its current status forbids."""

    def __init__(self, ticket_id: str, from_status: str, to_status: str) -> None:
        super().__init__(
            f"ticket {ticket_id}: cannot go from {from_status} to {to_status}",
            field="status",
        )
        self.ticket_id = ticket_id
        self.from_status = from_status
        self.to_status = to_status

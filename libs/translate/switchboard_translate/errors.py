"""Errors raised by the pure translators.

Translators never know HTTP; they raise :class:`InvalidRequest` with a message
written for the client (what is wrong and what to send instead) and the JSON
path of the offending field, and the facade turns it into an OpenAI-style 400
(``{"error": {"message", "type": "invalid_request_error", "param", "code"}}``).
"""

from __future__ import annotations


class InvalidRequest(ValueError):
    """A request body the gateway cannot translate; the client must change it."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param

    def to_openai_error(self) -> dict[str, object]:
        """The OpenAI error body for this error (status 400)."""
        return {
            "error": {
                "message": self.message,
                "type": "invalid_request_error",
                "param": self.param,
                "code": "invalid_request",
            }
        }

"""The one error translation raises: a request the target dialect cannot express."""

from __future__ import annotations


class TranslationError(ValueError):
    """The request cannot be expressed faithfully in the other dialect.

    The message names the offending field and says what to change; the HTTP
    edge answers it with a 400 ``invalid_request_error``.
    """

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param

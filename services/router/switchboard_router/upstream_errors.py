"""How a provider call fails at the HTTP seam: three exception types the router's retry and error rules read.

* :class:`ConnectTimeout` — no connection within the deployment's ``connect`` timeout (waiting for a free pooled
  connection included);
* :class:`ReadTimeout` — connected, but the provider fell silent for longer than the deployment's ``first_byte``
  timeout (whole answers, and streams until their headers are in; after that the stream pump times its reads
  itself, see :mod:`switchboard_router.streaming`);
* :class:`TransportError` — the connection could not be made or broke off;
* :class:`CallTimeout` — the whole call took longer than the time it was given (``fetch``'s ``within``: the
  deployment's ``total`` timeout, or what is left of the request's deadline), waiting for a connection included.

The class names appear in the error messages clients see ("did not answer within its connect timeout
(ConnectTimeout)").
"""

from __future__ import annotations


class TransportError(Exception):
    """The provider could not be reached, or the connection broke off mid-answer.

    Its text is a short reason a client may read ("the connection was refused"); the underlying error — host names,
    addresses, proxy and TLS details of the operator's network — is only logged."""


class ConnectTimeout(Exception):
    """No connection to the provider within the deployment's connect timeout."""


class ReadTimeout(Exception):
    """The provider went silent for longer than the deployment's first_byte timeout."""


class CallTimeout(Exception):
    """The whole call took longer than the time it was given."""

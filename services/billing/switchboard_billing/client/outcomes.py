"""How a request that ended early is recorded: the ledger status, HTTP status and error code of a caller that left.

The router settles every call it served and the facade the calls the router may never have taken; both record
a caller that went away before its answer was whole the same way, from here: status ``cancelled``, HTTP 499
("client closed request", as nginx and LiteLLM log it), code ``client_disconnected``. What such a request costs
is the usual rule: what the provider delivered when that is known, else its prompt with the cost unknown.

A request cut by the gateway itself is told apart by its code: ``caller_shutdown`` when the service that took it
(a facade) stopped and its grace ran out, ``router_shutdown`` when the router did, and ``deadline_exceeded``
(status ``error``, HTTP 503, as its client was answered) when the caller's deadline for it passed.
"""

from __future__ import annotations

#: The ledger status of a request whose caller left before its answer was whole.
CANCELLED = "cancelled"
#: Its HTTP status, in the ledger and the access log (never sent: there is no one left to read it).
CLIENT_CLOSED_REQUEST = 499
#: Its error code.
CLIENT_DISCONNECTED = "client_disconnected"
#: The error code of a request cut because the service that took it was shutting down (its grace ran out).
CALLER_SHUTDOWN = "caller_shutdown"
#: The error code of a request the router's shutdown ended.
ROUTER_SHUTDOWN = "router_shutdown"
#: The error code of a request whose caller's deadline passed (recorded as an error, HTTP 503).
DEADLINE_EXCEEDED = "deadline_exceeded"

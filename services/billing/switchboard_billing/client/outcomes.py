"""How a request that ended early is recorded: the ledger status, HTTP status and error code of a caller that left.

The router settles every call it served and the facade the calls the router may never have taken; both record
a caller that went away before its answer was whole the same way, from here: status ``cancelled``, HTTP 499
("client closed request", as nginx and LiteLLM log it), code ``client_disconnected``. What such a request costs
is the usual rule: what the provider delivered when that is known, else its prompt with the cost unknown.
"""

from __future__ import annotations

#: The ledger status of a request whose caller left before its answer was whole.
CANCELLED = "cancelled"
#: Its HTTP status, in the ledger and the access log (never sent: there is no one left to read it).
CLIENT_CLOSED_REQUEST = 499
#: Its error code.
CLIENT_DISCONNECTED = "client_disconnected"

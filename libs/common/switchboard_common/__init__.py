"""Plumbing shared by every Switchboard service: settings, logging, gRPC bootstrap, errors.

Business logic never lives here; each service owns its own. Importing this package chooses the gRPC core's
I/O engine (:mod:`switchboard_common.grpc_engine`), so it must come before ``grpc`` in a service process.
"""

from switchboard_common.grpc_engine import choose_io_engine

choose_io_engine()

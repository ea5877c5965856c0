"""Plumbing shared by every Switchboard service: settings, logging, gRPC bootstrap, errors.

Business logic never lives here; each service owns its own.
"""

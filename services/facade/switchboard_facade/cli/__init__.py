"""Command-line tools of the gateway: ``switchboard keys|teams|usage``."""

"""Command-line tools of the gateway."""

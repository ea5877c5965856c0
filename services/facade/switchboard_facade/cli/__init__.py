"""``switchboard``: the command line for the gateway's admin API (keys and teams)."""

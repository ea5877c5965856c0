"""Switchboard auth: virtual keys, teams and rate limits."""

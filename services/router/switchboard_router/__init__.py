"""Switchboard router: model catalog, deployment choice, provider adapters, retries."""

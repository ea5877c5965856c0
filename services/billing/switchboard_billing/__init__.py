"""Switchboard billing: prices, usage ledger, spend, budgets."""

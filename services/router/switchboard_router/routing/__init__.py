"""Choosing a deployment: access rules, privacy constraints, health and strategies."""

"""Switchboard facade: the one public HTTP door (OpenAI, Cursor and Anthropic dialects, admin API)."""

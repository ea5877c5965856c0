"""Pure translation between LLM API dialects.

The gateway's canonical request and response format is OpenAI Chat Completions
JSON. The facade translates client dialects (Anthropic Messages, the Responses
API, Cursor's bodies) to and from it; the router translates it to and from each
provider's wire format. Nothing here does I/O.
"""

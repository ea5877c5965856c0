"""Provider adapters: one module per wire format, all behind :class:`ProviderAdapter`.

Adapters are pure translators. The router's call engine does the HTTP (pooled
connections, timeouts, retries); an adapter only builds the provider request
from a canonical OpenAI Chat Completions body and turns the provider's answer
(whole, or streamed bytes) back into OpenAI JSON.
"""

"""Anthropic Messages ⇄ OpenAI Chat Completions, whole and streamed, both ways.

Towards Anthropic (the router's provider adapter): :func:`chat_request_to_anthropic`,
:func:`anthropic_message_to_chat_completion`, :class:`AnthropicStreamToChat`.
From Anthropic clients (the facade's ``/v1/messages``): :func:`anthropic_request_to_chat`,
:func:`chat_completion_to_anthropic`, :class:`ChatStreamToAnthropic`.
"""

from __future__ import annotations

from switchboard_translate.anthropic.error_body import (
    anthropic_error,
    anthropic_error_from_openai,
    error_type_for_status,
)
from switchboard_translate.anthropic.errors import TranslationError
from switchboard_translate.anthropic.request_from_anthropic import ERROR_TERMS, anthropic_request_to_chat
from switchboard_translate.anthropic.request_to_anthropic import (
    DEFAULT_MAX_TOKENS,
    chat_request_to_anthropic,
    default_max_tokens_for,
)
from switchboard_translate.anthropic.response_from_anthropic import anthropic_message_to_chat_completion
from switchboard_translate.anthropic.response_to_anthropic import chat_completion_to_anthropic
from switchboard_translate.anthropic.stop_reasons import finish_reason_from_anthropic, stop_reason_from_openai
from switchboard_translate.anthropic.stream_from_anthropic import AnthropicStreamToChat, StreamFailure
from switchboard_translate.anthropic.stream_to_anthropic import (
    ChatStreamToAnthropic,
    chat_completion_to_anthropic_events,
    encode_anthropic_events,
)
from switchboard_translate.anthropic.tool_ids import tool_id_from_anthropic, tool_id_to_anthropic
from switchboard_translate.anthropic.usage import anthropic_usage_from_openai, openai_usage_from_anthropic

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "ERROR_TERMS",
    "AnthropicStreamToChat",
    "ChatStreamToAnthropic",
    "StreamFailure",
    "TranslationError",
    "anthropic_error",
    "anthropic_error_from_openai",
    "anthropic_message_to_chat_completion",
    "anthropic_request_to_chat",
    "anthropic_usage_from_openai",
    "chat_completion_to_anthropic",
    "chat_completion_to_anthropic_events",
    "chat_request_to_anthropic",
    "default_max_tokens_for",
    "encode_anthropic_events",
    "error_type_for_status",
    "finish_reason_from_anthropic",
    "openai_usage_from_anthropic",
    "stop_reason_from_openai",
    "tool_id_from_anthropic",
    "tool_id_to_anthropic",
]

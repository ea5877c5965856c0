"""Answers name the model the client asked for, whatever the provider called it."""

from __future__ import annotations

import orjson

from switchboard_translate.answer_model import AnswerModel

OPENAI_CHUNK = (b'{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-2024-08-06",'
                b'"system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"content":"\\"model\\":1"}}]}')


def test_a_providers_id_is_replaced_by_the_name_asked_for() -> None:
    renamed = AnswerModel("team-gpt").name_bytes(OPENAI_CHUNK)
    assert orjson.loads(renamed) == {**orjson.loads(OPENAI_CHUNK), "model": "team-gpt"}
    assert list(orjson.loads(renamed)) == list(orjson.loads(OPENAI_CHUNK))  # the field stays where it was


def test_a_document_already_naming_it_passes_untouched() -> None:
    named = AnswerModel("gpt-4o-2024-08-06")
    assert named.name_bytes(OPENAI_CHUNK) is OPENAI_CHUNK
    spaced = b'{"model": "other", "choices": []}'  # another server's spacing: re-encoded, never missed
    assert orjson.loads(named.name_bytes(spaced))["model"] == "gpt-4o-2024-08-06"


def test_a_document_without_a_model_gets_one_and_non_objects_pass() -> None:
    model = AnswerModel("my-alias")
    assert orjson.loads(model.name_bytes(b'{"choices":[]}')) == {"choices": [], "model": "my-alias"}
    assert model.name_bytes(b"[1]") == b"[1]"
    assert model.name({"model": "x"}) == {"model": "my-alias"}

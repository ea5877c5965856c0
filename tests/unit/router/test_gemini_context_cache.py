"""Gemini explicit context caching (``prompt_cache: explicit``) through the router's own call path against the
fake Gemini and the fake Vertex AI over real HTTP: when an entry is made (only where it pays), what the request
that reads it carries, how its making is billed, and what happens when Google refuses or a call fails."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from switchboard_common import metrics
from switchboard_router.calls import complete_once
from switchboard_router.catalog.config import CatalogError, parse_catalog
from switchboard_router.deployment import Deployment
from switchboard_router.outcomes import AttemptFailed, StreamFinished, UnaryResult
from switchboard_router.providers.base import TokenUsage
from switchboard_router.providers.gemini_cache import ContextCaches, minimum_cacheable_tokens
from switchboard_router.routing.health import HealthBoard
from switchboard_router.streaming import stream_once
from switchboard_router.upstream_http import HttpPool
from tests.fakes.gemini_provider import FakeGemini, fake_gemini_fixture, fake_gemini_server_fixture  # noqa: F401
from tests.fakes.vertex_provider import PROJECT, FakeVertex, fake_vertex_fixture, fake_vertex_server_fixture  # noqa: F401

#: About 2,000 tokens of rules: past Gemini 2.5 Flash's 1,024-token minimum.
RULES = "You are a careful coding assistant. Follow the house rules. " * 130
READ_FILE = {"type": "function", "function": {"name": "read_file", "description": "Reads a file.",
                                              "parameters": {"type": "object",
                                                             "properties": {"path": {"type": "string"}}}}}


@pytest.fixture
async def pool() -> AsyncIterator[HttpPool]:
    pool = HttpPool(Deployment(id="x", public_model="x", provider="gemini", model="x", api_base="").timeouts, 10)
    yield pool
    await pool.aclose()


def conversation(turns: int, *, rules: str = RULES, file_lines: int = 10) -> dict[str, Any]:
    """A chat after ``turns`` user turns, each answered but the last; a file read in each answered turn."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": rules}]
    for n in range(turns - 1):
        messages.append({"role": "user", "content": f"Look at module {n}."})
        messages.append({"role": "assistant", "content": None, "tool_calls": [
            {"id": f"call_{n}", "type": "function",
             "function": {"name": "read_file", "arguments": orjson.dumps({"path": f"m{n}.py"}).decode()}}]})
        messages.append({"role": "tool", "tool_call_id": f"call_{n}",
                         "content": f"# module {n}\n" + "def helper():\n    return 42\n" * file_lines})
        messages.append({"role": "assistant", "content": f"Module {n} returns 42."})
    messages.append({"role": "user", "content": f"Now turn {turns}."})
    return {"model": "gemini-test", "messages": messages, "tools": [READ_FILE]}


def unique_rules() -> str:
    """Rules no other test sent (the router's adapters, and their caches, live as long as the process)."""
    return f"[{uuid.uuid4()}] {RULES}"


async def complete(pool: HttpPool, target: Deployment, body: dict[str, Any]) -> UnaryResult:
    return await complete_once(pool, HealthBoard(), target, "gemini-test", body, 1, "chat")


def creations(fake: FakeGemini) -> list[dict[str, Any]]:
    return [r.json() for r in fake.requests if r.path.endswith("/cachedContents")]


def generations(fake: FakeGemini) -> list[dict[str, Any]]:
    return [r.json() for r in fake.requests if ":generateContent" in r.path or ":streamGenerate" in r.path]


async def test_an_entry_is_made_on_the_second_turn_and_read_by_the_later_ones(fake_gemini: FakeGemini,
                                                                              pool: HttpPool) -> None:
    target = fake_gemini.deployment("gemini-2.5-flash", prompt_cache="explicit", prompt_cache_ttl=600)
    rules = unique_rules()
    first = await complete(pool, target, conversation(1, rules=rules))
    assert creations(fake_gemini) == [], "a prefix seen once does not pay for storage"
    assert "systemInstruction" in generations(fake_gemini)[-1]
    assert first.usage.cache_write_tokens == 0

    second = await complete(pool, target, conversation(2, rules=rules))
    made = creations(fake_gemini)
    assert len(made) == 1, "the prefix was seen before: the conversation goes on"
    assert made[0]["model"] == "models/gemini-2.5-flash" and made[0]["ttl"] == "600s"
    assert made[0]["systemInstruction"] == {"parts": [{"text": rules}]}
    assert made[0]["tools"][0]["functionDeclarations"][0]["name"] == "read_file"
    sent = generations(fake_gemini)[-1]
    entry = fake_gemini.caches.entries[sent["cachedContent"]]
    assert not {"systemInstruction", "tools", "toolConfig"} & sent.keys(), "they live in the entry"
    assert [c["role"] for c in made[0]["contents"]] == ["user", "model", "user", "model"]
    assert sent["contents"] == [{"role": "user", "parts": [{"text": "Now turn 2."}]}], "only the newest input"
    # The request that made the entry is billed for making it: written, not read.
    assert (second.usage.cache_write_tokens, second.usage.cached_prompt_tokens) == (entry.tokens, 0)
    assert second.usage.prompt_tokens == entry.tokens + len(orjson.dumps(sent["contents"][0])) // 4

    third = await complete(pool, target, conversation(3, rules=rules))
    assert len(creations(fake_gemini)) == 1, "the entry still covers more than half of the prefix"
    assert generations(fake_gemini)[-1]["cachedContent"] == entry.name
    assert (third.usage.cached_prompt_tokens, third.usage.cache_write_tokens) == (entry.tokens, 0)
    assert entry.reads == 2


async def test_a_growing_conversation_makes_a_new_entry_only_once_the_uncached_part_is_as_long(
        fake_gemini: FakeGemini, pool: HttpPool) -> None:
    target = fake_gemini.deployment("gemini-2.5-flash", prompt_cache="explicit")
    rules = unique_rules()
    written = read = 0
    for turn in range(1, 11):
        result = await complete(pool, target, conversation(turn, rules=rules, file_lines=60))
        written += result.usage.cache_write_tokens
        read += result.usage.cached_prompt_tokens
        if turn > 1:
            assert result.usage.cached_prompt_tokens or result.usage.cache_write_tokens, f"turn {turn} uses a cache"
    made = creations(fake_gemini)
    sizes = [entry.tokens for entry in fake_gemini.caches.entries.values()]
    assert 2 <= len(made) <= 4, "not one entry a turn"
    assert all(later >= 2 * earlier for earlier, later in zip(sizes, sizes[1:], strict=False)), sizes
    assert written == sum(sizes), "each entry's making is billed once"
    assert read > 3 * written


async def test_the_same_rules_and_tools_are_shared_by_a_new_conversation(fake_gemini: FakeGemini,
                                                                       pool: HttpPool) -> None:
    target = fake_gemini.deployment("gemini-2.5-flash", prompt_cache="explicit")
    rules = unique_rules()
    await complete(pool, target, conversation(1, rules=rules))
    assert creations(fake_gemini) == []
    other = await complete(pool, target, conversation(1, rules=rules) | {"messages": [
        {"role": "system", "content": rules}, {"role": "user", "content": "Something else."}]})
    made = creations(fake_gemini)
    assert len(made) == 1 and "contents" not in made[0], "the entry holds the rules and tools alone"
    assert other.usage.cache_write_tokens == fake_gemini.caches.entries[generations(fake_gemini)[-1][
        "cachedContent"]].tokens


async def test_the_clients_marks_decide_what_is_cached_on_first_sight(fake_gemini: FakeGemini,
                                                                      pool: HttpPool) -> None:
    """LiteLLM's users mark what Gemini should cache, the Anthropic way: the prefix ends with the last mark."""
    target = fake_gemini.deployment("gemini-2.5-flash", prompt_cache="explicit")
    document = "A long design document. " * 300
    body = {"model": "gemini-test", "messages": [
        {"role": "system", "content": "Answer from the document."},
        {"role": "user", "content": [{"type": "text", "text": document, "cache_control": {"type": "ephemeral"}}]},
        {"role": "assistant", "content": "I have read it."},
        {"role": "user", "content": "What does section 2 say?"},
    ]}
    result = await complete(pool, target, body)
    made = creations(fake_gemini)
    assert len(made) == 1, "made on first sight: the client asked"
    assert made[0]["contents"] == [{"role": "user", "parts": [{"text": document}]}], "up to the marked message"
    sent = generations(fake_gemini)[-1]
    assert [c["role"] for c in sent["contents"]] == ["model", "user"]
    assert "cache_control" not in orjson.dumps(sent).decode() and "cache_control" not in orjson.dumps(made).decode()
    assert result.usage.cache_write_tokens == fake_gemini.caches.entries[sent["cachedContent"]].tokens
    await complete(pool, target, body)
    assert len(creations(fake_gemini)) == 1, "the same marked prefix is read, not made again"


def test_marks_map_to_the_contents_gemini_receives() -> None:
    from switchboard_router.providers.gemini_request import generate_content_marked
    mark = {"type": "ephemeral"}
    call = {"id": "c1", "type": "function", "function": {"name": "read_file", "arguments": "{}"}}
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "Rules.", "cache_control": mark},
        {"role": "user", "content": "Read it."},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "text", "cache_control": mark},
        {"role": "user", "content": "And now?"},
    ]
    body, marked = generate_content_marked({"messages": messages}, model="gemini-2.5-flash")
    # The marked tool result and the user's text are one user content to Gemini: the mark ends before it.
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"] and marked == 2
    assert generate_content_marked({"messages": messages[:4]}, model="gemini-2.5-flash")[1] == 3
    assert generate_content_marked({"messages": messages[:1] + messages[1:2]}, model="gemini-2.5-flash")[1] == 0
    tools = [{**READ_FILE, "cache_control": mark}]
    assert generate_content_marked({"messages": messages[1:2], "tools": tools}, model="gemini-2.5-flash")[1] == 0
    assert generate_content_marked({"messages": messages[1:3]}, model="gemini-2.5-flash")[1] is None


async def test_a_one_off_conversation_without_rules_is_not_cached(fake_gemini: FakeGemini, pool: HttpPool) -> None:
    """Conversations without a system prompt or tools share an empty prefix: that is no evidence of reuse."""
    target = fake_gemini.deployment("gemini-2.5-flash", prompt_cache="explicit")
    for n in range(3):
        document = f"[{uuid.uuid4()}] " + "A long pasted log line. " * 400
        await complete(pool, target, {"model": "gemini-test", "messages": [
            {"role": "user", "content": document}, {"role": "assistant", "content": "Read."},
            {"role": "user", "content": f"Question {n}?"}]})
    assert creations(fake_gemini) == []


async def test_concurrent_turns_make_one_entry(fake_gemini: FakeGemini, pool: HttpPool) -> None:
    target = fake_gemini.deployment("gemini-2.5-flash", prompt_cache="explicit")
    rules = unique_rules()
    await complete(pool, target, conversation(1, rules=rules))
    results = await asyncio.gather(*(complete(pool, target, conversation(2, rules=rules)) for _ in range(5)))
    assert len(creations(fake_gemini)) == 1
    assert sum(r.usage.cache_write_tokens for r in results) == next(iter(fake_gemini.caches.entries.values())).tokens
    assert len({g["cachedContent"] for g in generations(fake_gemini)[-5:]}) == 1


async def test_short_prefixes_and_other_deployments_make_no_entry(fake_gemini: FakeGemini, pool: HttpPool) -> None:
    rules = unique_rules()
    short = fake_gemini.deployment("gemini-2.5-flash", prompt_cache="explicit")
    for turn in (1, 2, 3):
        await complete(pool, short, conversation(turn, rules="Be brief."))
    plain = fake_gemini.deployment("gemini-2.5-flash")
    for turn in (1, 2, 3):
        await complete(pool, plain, conversation(turn, rules=rules))
    assert creations(fake_gemini) == []
    assert all("cachedContent" not in g for g in generations(fake_gemini))
    assert minimum_cacheable_tokens("gemini-2.5-pro") == 4096
    assert minimum_cacheable_tokens("projects/p/locations/l/publishers/google/models/gemini-2.5-flash-lite") == 1024


async def test_a_refused_entry_leaves_the_request_uncached_and_is_not_asked_again(fake_gemini: FakeGemini,
                                                                                 pool: HttpPool) -> None:
    fake_gemini.caches.min_tokens = 1_000_000  # Google counts the prefix shorter than the gateway does
    target = fake_gemini.deployment("gemini-2.5-flash", prompt_cache="explicit")
    rules = unique_rules()
    for turn in (1, 2, 2, 2):
        result = await complete(pool, target, conversation(turn, rules=rules))
        assert result.usage.cache_write_tokens == 0
    assert len(creations(fake_gemini)) == 1, "refused once, not asked again within the lifetime"
    assert metrics.CONTEXT_CACHES.labels(target.id, "refused")._value.get() >= 1
    assert all("cachedContent" not in g and "systemInstruction" in g for g in generations(fake_gemini))


async def test_a_failed_call_hands_the_making_to_the_next_success(fake_gemini: FakeGemini, pool: HttpPool) -> None:
    target = fake_gemini.deployment("gemini-2.5-flash", prompt_cache="explicit")
    rules = unique_rules()
    await complete(pool, target, conversation(1, rules=rules))
    fake_gemini.overloaded_calls = 1  # the entry is made, then the call that reads it is refused
    with pytest.raises(AttemptFailed):
        await complete(pool, target, conversation(2, rules=rules))
    assert len(creations(fake_gemini)) == 1
    entry = next(iter(fake_gemini.caches.entries.values()))
    retried = await complete(pool, target, conversation(2, rules=rules))
    assert retried.usage.cache_write_tokens == entry.tokens, "billed to the request that succeeded with it"
    again = await complete(pool, target, conversation(2, rules=rules))
    assert (again.usage.cache_write_tokens, again.usage.cached_prompt_tokens) == (0, entry.tokens)


@pytest.mark.parametrize("streamed", [False, True])
async def test_an_entry_google_no_longer_has_is_forgotten_and_the_request_sent_without_it(
        fake_gemini: FakeGemini, pool: HttpPool, streamed: bool) -> None:
    target = fake_gemini.deployment("gemini-2.5-flash", prompt_cache="explicit")
    rules = unique_rules()
    await complete(pool, target, conversation(1, rules=rules))
    await complete(pool, target, conversation(2, rules=rules))
    gone, entry = next(iter(fake_gemini.caches.entries.items()))
    fake_gemini.caches.entries.clear()  # deleted at Google (cachedContents.delete), or expired early
    lost = metrics.CONTEXT_CACHES.labels(target.id, "lost")._value.get()
    if streamed:
        finished = [item async for item in stream_once(pool, HealthBoard(), target, "gemini-test",
                                                       conversation(3, rules=rules), 1, True)
                    if isinstance(item, StreamFinished)]
        usage = finished[0].usage
    else:
        usage = (await complete(pool, target, conversation(3, rules=rules))).usage
    refused, resent = generations(fake_gemini)[-2:]
    assert refused["cachedContent"] == gone
    assert "cachedContent" not in resent and resent["systemInstruction"] == {"parts": [{"text": rules}]}
    assert usage.cache_write_tokens == 0 and usage.cached_prompt_tokens < entry.tokens, "answered uncached"
    assert metrics.CONTEXT_CACHES.labels(target.id, "lost")._value.get() == lost + 1
    await complete(pool, target, conversation(4, rules=rules))
    assert len(creations(fake_gemini)) == 2, "the conversation gets a new entry"
    assert generations(fake_gemini)[-1]["cachedContent"] != gone


async def test_streams_read_the_entry_and_bill_its_making(fake_gemini: FakeGemini, pool: HttpPool) -> None:
    target = fake_gemini.deployment("gemini-2.5-flash", prompt_cache="explicit")
    rules = unique_rules()
    await complete(pool, target, conversation(1, rules=rules))
    finished = [item async for item in stream_once(pool, HealthBoard(), target, "gemini-test",
                                                   conversation(2, rules=rules), 1, True)
                if isinstance(item, StreamFinished)]
    entry = next(iter(fake_gemini.caches.entries.values()))
    assert generations(fake_gemini)[-1]["cachedContent"] == entry.name
    assert (finished[0].usage.cache_write_tokens, finished[0].usage.cached_prompt_tokens) == (entry.tokens, 0)


async def test_a_refused_stream_hands_the_making_to_the_next_success(fake_gemini: FakeGemini,
                                                                    pool: HttpPool) -> None:
    target = fake_gemini.deployment("gemini-2.5-flash", prompt_cache="explicit")
    rules = unique_rules()
    await complete(pool, target, conversation(1, rules=rules))
    fake_gemini.overloaded_calls = 1
    with pytest.raises(AttemptFailed):
        async for _ in stream_once(pool, HealthBoard(), target, "gemini-test", conversation(2, rules=rules), 1, True):
            pass
    entry = next(iter(fake_gemini.caches.entries.values()))
    finished = [item async for item in stream_once(pool, HealthBoard(), target, "gemini-test",
                                                   conversation(2, rules=rules), 1, True)
                if isinstance(item, StreamFinished)]
    assert finished[0].usage.cache_write_tokens == entry.tokens


async def test_an_entry_near_its_expiry_is_not_used() -> None:
    now = [1000.0]
    caches = ContextCaches(clock=lambda: now[0])
    target = Deployment(id="g", public_model="g", provider="gemini", model="gemini-2.5-flash", api_base="",
                        extra={"prompt_cache": "explicit", "prompt_cache_ttl": 300})

    class Pool:
        made = 0

        async def fetch(self, request: Any, within: float | None = None) -> Any:
            Pool.made += 1
            from switchboard_router.upstream_http import Answer
            return Answer(200, orjson.dumps({"name": f"cachedContents/{Pool.made}",
                                             "usageMetadata": {"totalTokenCount": 2000}}), {})

    def request(turns: int) -> Any:
        from switchboard_router.providers.gemini import GeminiAdapter
        return GeminiAdapter().build_request(target, conversation(turns), stream=False)

    for turns in (1, 2):
        sent = request(turns)
        await caches.apply(target, sent, Pool(), create_url="u", model_name="models/gemini-2.5-flash")  # type: ignore[arg-type]
    assert orjson.loads(sent.content)["cachedContent"] == "cachedContents/1"
    now[0] += 300 - 30 - 1
    sent = request(3)
    await caches.apply(target, sent, Pool(), create_url="u", model_name="models/gemini-2.5-flash")  # type: ignore[arg-type]
    assert orjson.loads(sent.content)["cachedContent"] == "cachedContents/1"
    now[0] += 2  # within 30 s of its expiry: a new entry for the conversation, which was seen
    sent = request(3)
    await caches.apply(target, sent, Pool(), create_url="u", model_name="models/gemini-2.5-flash")  # type: ignore[arg-type]
    assert orjson.loads(sent.content)["cachedContent"] == "cachedContents/2"


def test_usage_with_a_cache_write_moves_the_written_tokens_out_of_the_cached_ones() -> None:
    from switchboard_router.providers.base import CacheWrite
    usage = TokenUsage(prompt_tokens=3000, completion_tokens=10, cached_prompt_tokens=2500)
    moved = usage.with_cache_write(CacheWrite(2500, lambda: None))
    assert (moved.prompt_tokens, moved.cached_prompt_tokens, moved.cache_write_tokens) == (3000, 0, 2500)
    assert usage.with_cache_write(None) is usage


async def test_vertex_gemini_makes_its_entries_in_the_deployment_location(fake_vertex: FakeVertex,
                                                                         pool: HttpPool) -> None:
    fake_vertex.static_tokens = {"static-token"}
    target = Deployment(id="vertex/gemini-2.5-flash", public_model="gemini-test", provider="vertex",
                        model="gemini-2.5-flash", api_base=fake_vertex.base_url, api_key=None,
                        extra={"vertex_project": PROJECT, "vertex_location": "europe-west4",
                               "prompt_cache": "explicit"})
    from switchboard_router.providers.registry import adapter_for
    adapter: Any = adapter_for("vertex")

    async def static(deployment: Deployment, request: Any) -> None:
        request.headers["Authorization"] = "Bearer static-token"
    adapter.authorize, real = static, adapter.authorize
    try:
        rules = unique_rules()
        await complete(pool, target, conversation(1, rules=rules))
        second = await complete(pool, target, conversation(2, rules=rules))
    finally:
        adapter.authorize = real
    made = [r for r in fake_vertex.requests if r.path.endswith("/cachedContents")]
    assert [r.path for r in made] == [f"/v1/projects/{PROJECT}/locations/europe-west4/cachedContents"]
    assert made[0].json()["model"] == (f"projects/{PROJECT}/locations/europe-west4/publishers/google/models/"
                                       "gemini-2.5-flash")
    assert made[0].headers["authorization"] == "Bearer static-token"
    sent = [r.json() for r in fake_vertex.requests if r.path.endswith(":generateContent")][-1]
    assert sent["cachedContent"].startswith(f"projects/{PROJECT}/locations/europe-west4/cachedContents/")
    assert second.usage.cache_write_tokens > 0


@pytest.mark.parametrize(("deployment", "error"), [
    ({"provider": "anthropic", "model": "claude-sonnet-4-5", "prompt_cache": "explicit"},
     "explicit caching is Gemini's"),
    ({"provider": "gemini", "model": "gemini-2.5-flash", "prompt_cache": "explicit", "prompt_cache_ttl": 5},
     "from 60 to 86400"),
    ({"provider": "gemini", "model": "gemini-2.5-flash", "prompt_cache_ttl": 300}, "set prompt_cache: explicit"),
    ({"provider": "gemini", "model": "gemini-2.5-flash", "prompt_cache": "explicit", "privacy_tier": "zero_retention"},
     "the strictest privacy tier"),
])
def test_the_catalog_checks_the_settings(deployment: dict[str, Any], error: str) -> None:
    with pytest.raises(CatalogError, match=error):
        parse_catalog({"models": [{"name": "m", "deployments": [{"api_key": "k", **deployment}]}]})

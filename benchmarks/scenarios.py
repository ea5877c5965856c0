"""The benchmark's scenarios and the request bodies they send.

- ``chat``: a short non-streaming chat completion (whole-response latency, wrk);
- ``stream``: the same request streamed with usage (TTFT and total, stream client);
- ``long-prompt``: a streamed request carrying a ~100 KB Cursor-sized context (system prompt,
  open files, earlier turns), which shows the cost of parsing and forwarding a large body;
- ``long-stream``: a streamed request whose answer is 1,000 chunks (its prompt asks the fake
  provider for that many words), which shows the per-chunk cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson

LONG_PROMPT_BYTES = 100_000
LONG_STREAM_CHUNKS = 1_000


@dataclass(frozen=True)
class Scenario:
    """One row of the report: a request shape at one concurrency."""

    kind: str
    concurrency: int
    streaming: bool

    @property
    def key(self) -> str:
        return f"{self.kind}@c{self.concurrency}"


def build_scenarios(concurrencies: list[int], long_concurrencies: list[int], kinds: set[str]) -> list[Scenario]:
    """Short chat and stream at every concurrency, then the long ones; filtered by ``kinds``."""
    scenarios = [Scenario("chat", c, False) for c in concurrencies]
    scenarios += [Scenario("stream", c, True) for c in concurrencies]
    scenarios += [Scenario("long-prompt", c, True) for c in long_concurrencies]
    scenarios += [Scenario("long-stream", c, True) for c in long_concurrencies]
    return [scenario for scenario in scenarios if scenario.kind in kinds]


ALL_KINDS = ("chat", "stream", "long-prompt", "long-stream")


def _short_messages() -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "You are a concise assistant."},
        {"role": "user", "content": "Say hello to the benchmark."},
    ]


def _cursor_sized_messages(target_bytes: int) -> list[dict[str, str]]:
    """A context shaped like an editor agent's: rules, open files, earlier turns, a question."""
    system = (
        "You are a powerful agentic AI coding assistant. You operate in the user's editor. "
        "Follow the user's rules, cite code with file paths, and keep edits minimal.\n" * 20
    )

    def file_line(index: int) -> str:
        return (
            f"    def handler_{index}(self, request: Request) -> Response:\n"
            f'        """Handle case {index}: validate, route, respond."""\n'
            f"        payload = self.parse(request.body, limit={index * 7 % 4096})\n"
            f"        return self.respond(payload, status={200 + index % 5})\n"
        )

    messages = [{"role": "system", "content": system}]
    budget = target_bytes - len(system) - 400
    turn = 0
    position = 0
    while budget > 0:
        chunk: list[str] = []
        size = 0
        while size < min(budget, 24_000):
            line = file_line(position)
            chunk.append(line)
            size += len(line)
            position += 1
        path = f"src/app/handlers_{turn}.py"
        messages.append({"role": "user", "content": f"<open_file path={path!r}>\n{''.join(chunk)}</open_file>"})
        messages.append({"role": "assistant", "content": f"I read {path}; the handlers share one parse/respond shape."})
        budget -= size + 120
        turn += 1
    messages.append({"role": "user", "content": "Refactor the handlers so they share one validation step."})
    return messages


def request_body(kind: str, model: str) -> bytes:
    """The exact bytes a scenario POSTs."""
    body: dict[str, object] = {"model": model}
    if kind == "chat":
        body["messages"] = _short_messages()
        return orjson.dumps(body)
    body["stream"] = True
    body["stream_options"] = {"include_usage": True}
    if kind == "stream":
        body["messages"] = _short_messages()
    elif kind == "long-prompt":
        body["messages"] = _cursor_sized_messages(LONG_PROMPT_BYTES)
    elif kind == "long-stream":
        body["messages"] = [*_short_messages()[:1],
                            {"role": "user", "content": f"Tell the benchmark a story. Answer in {LONG_STREAM_CHUNKS} words."}]
    else:
        raise ValueError(f"unknown scenario kind {kind!r}")
    return orjson.dumps(body)


def write_bodies(directory: Path, model: str, kinds: set[str]) -> dict[str, Path]:
    """Write each kind's body to a file (wrk and the stream client read bodies from files)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for kind in sorted(kinds):
        path = directory / f"{kind}.json"
        path.write_bytes(request_body(kind, model))
        paths[kind] = path
    return paths

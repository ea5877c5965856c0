"""An editor agent's conversation, turn by turn, as the request bodies a client like Cursor sends.

An agent resends everything on every turn: the same system prompt (rules, environment) and the
same tool definitions, then the whole conversation so far. Turn ``k``'s request is turn ``k-1``'s
messages, byte for byte, followed by three new ones:

- a short user message (the next instruction);
- the assistant's answer to the previous turn: a sentence and one tool call (``read_file``,
  ``run_terminal_cmd``, ``grep_search`` or ``list_dir``, with JSON arguments);
- the tool's result: a source file, a test run with ``git log``, search hits or a directory
  listing, about a tenth of the last request's size.

The tool results carry what real ones do: e-mail addresses of authors and maintainers, a support
phone number, a GitHub token and a database URL with its password in a config file, so a key with
``pii_policy: substitute`` has values to replace on every turn. Everything but the system prompt
and the tools depends on the conversation id, so two conversations share only what two Cursor
sessions share; the same id always gives the same bytes.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

_SYSTEM_PROMPT = "".join(
    (
        "You are a powerful agentic AI coding assistant, powered by a frontier model. You operate in the user's editor.\n",
        "You are pair programming with a USER to solve their coding task. Each time the USER sends a message, "
        "information about their current state may be attached: open files, cursor position, recently viewed "
        "files, edit history, linter errors.\n",
        "<tool_calling>\nFollow the tool call schema exactly and provide all necessary parameters. Never refer to "
        "tool names when speaking to the USER. Only call tools when they are necessary. Before calling a tool, "
        "explain to the USER why you are calling it.\n</tool_calling>\n",
        "<making_code_changes>\nNever output code to the USER unless requested; use the edit tools. Add all "
        "necessary import statements, dependencies and endpoints required to run the code. Fix linter errors "
        "if clear how to; do not loop more than three times on the same file.\n</making_code_changes>\n",
        "<searching_and_reading>\nPrefer semantic search over grep, read larger sections of a file at once over "
        "many small calls, and stop calling tools once you have found a reasonable place to edit or answer.\n"
        "</searching_and_reading>\n",
        "<user_rules>\n- Python 3.11, type hints everywhere, ruff clean.\n- Tests talk to real servers on loopback; "
        "never mock our own code.\n- Docstrings say why, not how.\n- Keep edits minimal and cite file paths.\n"
        "</user_rules>\n",
    )
) * 4

_TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": list(properties)},
        },
    }
    for name, description, properties in (
        (
            "read_file",
            "Read the contents of a file (up to 250 lines at a time). Read enough context to answer; "
            "each call costs a turn.",
            {
                "target_file": {"type": "string", "description": "Path of the file, relative to the workspace."},
                "start_line_one_indexed": {"type": "integer", "description": "First line to read."},
                "end_line_one_indexed_inclusive": {"type": "integer", "description": "Last line to read."},
            },
        ),
        (
            "run_terminal_cmd",
            "Propose a command to run in the user's terminal; the user may approve it first.",
            {
                "command": {"type": "string", "description": "The terminal command to execute."},
                "is_background": {"type": "boolean", "description": "Whether it runs in the background."},
            },
        ),
        (
            "grep_search",
            "Fast exact text or regex search over files with ripgrep; results are capped at 50 matches.",
            {
                "query": {"type": "string", "description": "The regex pattern to search for."},
                "include_pattern": {"type": "string", "description": "Glob of the files to include."},
            },
        ),
        (
            "list_dir",
            "List the contents of a directory; useful to discover the structure of a codebase.",
            {"relative_workspace_path": {"type": "string", "description": "Path relative to the workspace root."}},
        ),
        (
            "edit_file",
            "Propose an edit to an existing file or create a new one; mark unchanged code with comments.",
            {
                "target_file": {"type": "string", "description": "The file to modify."},
                "instructions": {"type": "string", "description": "One sentence describing the edit."},
                "code_edit": {"type": "string", "description": "The precise lines of code to edit."},
            },
        ),
    )
]

class _Lines(list[str]):
    """Lines of a text, with their joined size kept as they are added."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__()
        self.size = 0
        self.add(*lines)

    def add(self, *lines: str) -> None:
        self.extend(lines)
        self.size += sum(len(line) + 1 for line in lines)


_TOOL_CYCLE = ("read_file", "run_terminal_cmd", "read_file", "grep_search", "list_dir")
_FIRST = ("jane", "omar", "li", "sofia", "pieter", "amara", "kenji", "lucia")
_LAST = ("doe", "haddad", "wei", "rossi", "devries", "okafor", "tanaka", "garcia")


class _Conversation:
    """The values one conversation is made of, derived from its id (stable, distinct per id)."""

    def __init__(self, conversation_id: str) -> None:
        digest = hashlib.blake2b(conversation_id.encode(), digest_size=16).hexdigest()
        self.tag = digest[:8]
        number = int(digest, 16)
        self.people = [
            f"{_FIRST[(number >> (3 * i)) % 8]}.{_LAST[(number >> (3 * i + 9)) % 8]}{(number >> (5 * i)) % 90 + 10}"
            for i in range(4)
        ]
        self.phone = f"+44 20 7946 {number % 9000 + 1000}"
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        self.github_token = "ghp_" + "".join(alphabet[(number >> (6 * i)) % 62] for i in range(20)) + digest[:16]
        self.db_password = "pw" + digest[16:28]

    def email(self, index: int) -> str:
        return f"{self.people[index % len(self.people)]}@acme-corp.example"


def _source_file(conv: _Conversation, turn: int, size: int) -> str:
    lines = _Lines([
        f'"""Request handlers of the {conv.tag} service (turn {turn}).',
        "",
        f"Maintainer: {conv.people[turn % 4].replace('.', ' ').title()} <{conv.email(turn)}>.",
        f"On-call: {conv.phone}.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
    ])
    index = 0
    while lines.size < size:
        name = f"handle_{conv.tag}_{turn}_{index}"
        lines.add(
            f"async def {name}(self, request: Request) -> Response:",
            f'    """Validate, route and answer case {index} of turn {turn}."""',
            f"    payload = await self.parse(request, limit={(index * 7919 + turn) % 65536})",
            f"    if payload.get('version') != {index % 5}:",
            f"        raise HTTPError(status={400 + index % 29}, reason='unsupported version in {name}')",
            f"    return self.respond(payload, status={200 + index % 5}, cache_seconds={index % 600})",
            "",
        )
        index += 1
    return "\n".join(lines)


def _test_run(conv: _Conversation, turn: int, size: int) -> str:
    lines = _Lines([f"$ git log --format='%h %an <%ae> %s' -n 8 && pytest -q tests/test_{conv.tag}.py"])
    for index in range(8):
        lines.add(f"{conv.tag[index % 8]}{turn}{index:05x} {conv.people[index % 4]} <{conv.email(index)}> "
                     f"handlers: share the validation step of case {index * turn}")
    index = 0
    while lines.size < size:
        outcome = "PASSED" if index % 11 else "FAILED"
        lines.add(f"tests/test_{conv.tag}.py::test_case_{turn}_{index} {outcome} "
                     f"[{(index * 100) // 400 % 100:3d}%]  ({index * 0.013:.3f}s)")
        if outcome == "FAILED":
            lines.add(f"E   AssertionError: expected status {200 + index % 5}, got {400 + index % 29} "
                         f"for payload version {index % 5} (request id {conv.tag}-{turn}-{index})")
        index += 1
    return "\n".join(lines)


def _config_file(conv: _Conversation, turn: int, size: int) -> str:
    lines = [
        f"# settings of the {conv.tag} service",
        f"DATABASE_URL=postgresql://app_{conv.tag}:{conv.db_password}@db.internal.example:5432/app",
        f"GITHUB_TOKEN={conv.github_token}",
        f"ALERT_EMAIL={conv.email(turn + 1)}",
    ]
    return "\n".join(lines) + "\n" + _source_file(conv, turn, size - sum(len(line) + 1 for line in lines))


def _search_hits(conv: _Conversation, turn: int, size: int) -> str:
    lines = _Lines([])
    index = 0
    while lines.size < size:
        lines.add(f"src/{conv.tag}/handlers_{index % 13}.py:{index * 7 + turn}:    payload = await "
                     f"self.parse(request, limit={(index * 7919 + turn) % 65536})  # case {index}")
        index += 1
    return "\n".join(lines)


def _listing(conv: _Conversation, turn: int, size: int) -> str:
    lines = _Lines([f"CODEOWNERS: {conv.email(turn + 2)}"])
    index = 0
    while lines.size < size:
        lines.add(f"[file] src/{conv.tag}/module_{turn}_{index}.py ({(index * 37) % 900 + 40} lines, "
                     f"{(index * 1543) % 30000 + 900} bytes)")
        index += 1
    return "\n".join(lines)


def _tool_call(conv: _Conversation, turn: int) -> tuple[str, dict[str, object], str]:
    """The tool the assistant calls on ``turn``, its arguments, and the sentence before it."""
    tool = _TOOL_CYCLE[turn % len(_TOOL_CYCLE)]
    if tool == "read_file":
        path = f"src/{conv.tag}/{'settings.env' if turn % 4 == 2 else f'handlers_{turn}.py'}"
        return tool, {"target_file": path, "start_line_one_indexed": 1, "end_line_one_indexed_inclusive": 250}, (
            f"Let me read {path} to see how the handlers validate their payloads.")
    if tool == "run_terminal_cmd":
        return tool, {"command": f"git log -n 8 && pytest -q tests/test_{conv.tag}.py", "is_background": False}, (
            "I'll run the tests and look at the recent history of this module.")
    if tool == "grep_search":
        return tool, {"query": r"self\.parse\(request", "include_pattern": "*.py"}, (
            "Let me find every place that parses a request.")
    return tool, {"relative_workspace_path": f"src/{conv.tag}"}, "Let me list the package to see its modules."


def _tool_result(conv: _Conversation, turn: int, tool: str, size: int) -> str:
    if tool == "read_file":
        return (_config_file if turn % 4 == 2 else _source_file)(conv, turn, size)
    if tool == "run_terminal_cmd":
        return _test_run(conv, turn, size)
    if tool == "grep_search":
        return _search_hits(conv, turn, size)
    return _listing(conv, turn, size)


def _fixed_bytes(model: str) -> int:
    """Bytes of a request that holds no turn yet (model, options, system prompt, tools)."""
    return len(_body(model, [{"role": "system", "content": _SYSTEM_PROMPT}]))


def _body(model: str, messages: list[dict[str, object]]) -> bytes:
    return orjson.dumps({
        "model": model,
        "messages": messages,
        "tools": _TOOLS,
        "stream": True,
        "stream_options": {"include_usage": True},
    })


def agent_turn_bodies(model: str, conversation_id: str, turns: int, last_turn_bytes: int) -> list[bytes]:
    """The ``turns`` request bodies of one conversation, in order; the last about ``last_turn_bytes`` long."""
    conv = _Conversation(conversation_id)
    # About 600 bytes of each turn are the user message and the tool call; the rest is the result.
    result_size = max(200, (last_turn_bytes - _fixed_bytes(model)) // turns - 600)
    messages: list[dict[str, object]] = [{"role": "system", "content": _SYSTEM_PROMPT}]
    bodies = []
    for turn in range(1, turns + 1):
        tool, arguments, preface = _tool_call(conv, turn)
        call_id = f"call_{conv.tag}_{turn}"
        messages.append({
            "role": "user",
            "content": (f"<user_query>Step {turn}: the handlers of src/{conv.tag} disagree on validation; "
                        f"{'find out why' if turn == 1 else 'go on from what you found'} and propose one "
                        "shared validation step.</user_query>"),
        })
        messages.append({
            "role": "assistant",
            "content": preface,
            "tool_calls": [{"id": call_id, "type": "function",
                            "function": {"name": tool, "arguments": orjson.dumps(arguments).decode()}}],
        })
        messages.append({"role": "tool", "tool_call_id": call_id,
                         "content": _tool_result(conv, turn, tool, result_size)})
        bodies.append(_body(model, messages))
    return bodies

"""Cost and quality of the router's PII/secret scan, with Presidio and detect-secrets for comparison.

Prints numbers; asserts nothing. Run from the repository root:

    python benchmarks/pii_bench.py            # our scanner only (stdlib only)
    python benchmarks/pii_bench.py --compare  # also Presidio pattern recognizers and detect-secrets, if installed

The corpus imitates what Cursor sends: source files in <file> tags, configs, logs and stack traces,
full of numbers, hashes, UUIDs, versions and colours, with a few personal values and secrets planted
at known places. "Recall" counts planted values found exactly; "false positives" counts findings
that are not planted values.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import statistics
import string
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services" / "router"))

from switchboard_router.privacy import (
    ChatStreamRestorer,
    PiiPolicy,
    find_pii,
    restore_completion,
    scan_request,
)
from switchboard_router.privacy.validators import luhn_valid

# --- corpus -----------------------------------------------------------------------------------

_FIRST = ["jane", "omar", "li", "sofia", "pieter", "amara", "kenji", "lucia"]
_LAST = ["doe", "haddad", "wei", "rossi", "devries", "okafor", "tanaka", "garcia"]
_DOMAINS = ["acme-corp.com", "example.org", "mail.fabrikam.io", "contoso.co.uk"]


def _card(rng: random.Random) -> str:
    while True:
        digits = "4" + "".join(rng.choice(string.digits) for _ in range(15))
        if luhn_valid(digits):
            return " ".join(digits[i : i + 4] for i in range(0, 16, 4))


def _iban(rng: random.Random) -> str:
    bban = "".join(rng.choice(string.digits) for _ in range(18))
    check = 98 - int(bban + "131400") % 97  # "DE" -> 13 14, then "00"
    return f"DE{check:02d}{bban}"


def _b64url(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _random(rng: random.Random, alphabet: str, size: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(size))


_ALNUM = string.ascii_letters + string.digits


def _jwt(rng: random.Random) -> str:
    header = _b64url({"alg": "HS256", "typ": "JWT"})
    return ".".join([header, _b64url({"sub": rng.randint(1, 10**6)}), _random(rng, _ALNUM + "-_", 43)])


_PLANTS: list[tuple[str, Callable[[random.Random], str], str]] = [
    ("EMAIL", lambda r: f"{r.choice(_FIRST)}.{r.choice(_LAST)}{r.randint(1, 99)}@{r.choice(_DOMAINS)}", 'OWNER = "{}"'),
    ("PHONE", lambda r: f"+44 20 7946 {r.randint(1000, 9999)}", "# support hotline: {}"),
    ("PHONE", lambda r: f"({r.randint(201, 989)}) 555-{r.randint(1000, 9999)}", "contact: {}  # sales"),
    ("CARD", _card, 'test_card = "{}"  # from the failing order'),
    ("IBAN", _iban, "payout_iban: {}"),
    ("SSN", lambda r: f"{r.randint(100, 665)}-{r.randint(10, 99)}-{r.randint(1000, 9999)}", "ssn={} in fixture"),
    ("IP", lambda r: f"203.0.113.{r.randint(1, 254)}", 'DB_HOST = "{}"'),
    ("SECRET", lambda r: "AKIA" + _random(r, string.ascii_uppercase + "234567", 16), "aws_access_key_id = {}"),
    ("SECRET", lambda r: "ghp_" + _random(r, _ALNUM, 36), 'token: "{}"'),
    ("SECRET", lambda r: "sk-proj-" + _random(r, _ALNUM, 48), "OPENAI_API_KEY={}"),
    ("SECRET", _jwt, "Authorization: Bearer {}"),
    ("SECRET", lambda r: _random(r, _ALNUM, 20), 'DATABASE_URL = "postgres://app:{}@db.internal:5432/app"'),
]

_FILLER = [
    '''def load_user(session, user_id: int) -> User:
    """Fetch a user by primary key; raises NotFound (HTTP 404)."""
    row = session.execute(select(User).where(User.id == user_id)).scalar_one_or_none()
    if row is None:
        raise NotFound(f"user {user_id} not found")
    return row
''',
    """export async function fetchOrders(page = 1, size = 50): Promise<Order[]> {
  const res = await fetch(`/api/v2/orders?page=${page}&size=${size}`, { headers: { "x-request-id": "550e8400-e29b-41d4-a716-446655440000" } });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return (await res.json()).items as Order[];
}
""",
    """{"name": "web", "version": "3.14.2", "dependencies": {"react": "^18.2.0", "lodash": "4.17.21", "zod": "~3.22.4"},
 "engines": {"node": ">=18.17.1"}, "commit": "9fceb02d0ae598e95dc970b74767f19372d61af8"}
""",
    """2024-01-15T12:34:56.789Z INFO  request_id=7c9e6679-7425-40de-944b-e07fc1f90ae7 status=200 dur_ms=12.7 bytes=18234
2024-01-15T12:34:57.001Z WARN  retry attempt=2 backoff_ms=400 upstream=127.0.0.1:8080 ts=1705322097001
""",
    """.button { color: #ff0000; background: rgba(255, 255, 255, 0.5); margin: 0 0 0 4px; z-index: 1000; }
.grid { grid-template-columns: repeat(12, 1fr); transition: all 150ms cubic-bezier(0.4, 0, 0.2, 1); }
""",
    """Traceback (most recent call last):
  File "/usr/lib/python3.11/asyncio/base_events.py", line 653, in run_until_complete
  File "/app/worker.py", line 88, in handle  # job 1234567890123456789
ValueError: invalid literal for int() with base 10: '0x7fffffff'
""",
    """SELECT o.id, o.total_cents, o.created_at FROM orders o WHERE o.created_at >= '2024-01-01 00:00:00'
  AND o.total_cents BETWEEN 1000 AND 250000 ORDER BY o.id DESC LIMIT 100 OFFSET 200;
""",
    """std::vector<uint64_t> ids = {18446744073709551615ULL, 9223372036854775807ULL};
auto it = std::find(ids.begin(), ids.end(), 0xdeadbeefULL); // a::b::c, arr[1::2], 12:34:56
""",
]


def make_text(size: int, seed: int = 7, plant_every: int = 900) -> tuple[str, list[tuple[str, str]]]:
    """About ``size`` characters of Cursor-like context, one planted value per ``plant_every`` chars."""
    rng = random.Random(seed)
    parts: list[str] = []
    planted: list[tuple[str, str]] = []
    length = 0
    next_plant = plant_every // 2
    while length < size:
        if length >= next_plant:
            kind, make, template = _PLANTS[len(planted) % len(_PLANTS)]
            value = make(rng)
            planted.append((kind, value))
            piece = template.format(value) + "\n"
            next_plant += plant_every
        else:
            piece = rng.choice(_FILLER)
        parts.append(piece)
        length += len(piece)
    return "".join(parts), planted


def chat_body(text: str) -> dict[str, object]:
    return {
        "model": "gpt-4o",
        "stream": True,
        "messages": [
            {"role": "system", "content": "You are a powerful agentic AI coding assistant. <rules>...</rules>"},
            {"role": "user", "content": f"<attached_files>\n<file path='src/app.py'>\n{text}</file>\n</attached_files>\n"
                                        "Why does the login fail?"},
        ],
    }  # fmt: skip


# --- timing -----------------------------------------------------------------------------------


def _timed(fn: Callable[[], object], repeat: int) -> tuple[float, float, float]:
    """Best, median and 95th percentile wall time in milliseconds.

    The best run is the cost on an idle core; median and p95 include whatever else the machine
    was doing.
    """
    fn()  # warm caches (compiled patterns, first-call imports)
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return samples[0], statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def bench_ours() -> None:
    print("== switchboard_router.privacy: added latency per request (substitute policy) ==")
    print(f"{'prompt':>8} {'best ms':>8} {'median ms':>10} {'p95 ms':>8} {'found':>6}")
    for size, repeat in ((1_000, 400), (10_000, 200), (100_000, 30)):
        text, _planted = make_text(size)
        body = chat_body(text)
        best, median, p95 = _timed(lambda body=body: scan_request(body, PiiPolicy.SUBSTITUTE), repeat)
        found = sum(scan_request(body, PiiPolicy.SUBSTITUTE).counts.values())
        print(f"{size // 1000:>6}KB {best:>8.3f} {median:>10.3f} {p95:>8.3f} {found:>6}")
    clean = "".join(_FILLER) * 12  # ~10 KB with nothing to find: the common case
    best, median, p95 = _timed(lambda: scan_request(chat_body(clean), PiiPolicy.SUBSTITUTE), 200)
    print(f"{len(clean) // 1000:>6}KB {best:>8.3f} {median:>10.3f} {p95:>8.3f} {0:>6}  (no personal data in it)")

    text, _ = make_text(10_000)
    result = scan_request(chat_body(text), PiiPolicy.SUBSTITUTE)
    answer_text = " ".join(f"See {token} here." for token in result.vault) * 4
    completion = {"choices": [{"index": 0, "message": {"role": "assistant", "content": answer_text}}]}
    _best, median, _ = _timed(lambda: restore_completion(completion, result.vault), 300)
    print(f"restore_completion, {len(answer_text)} chars answer, {len(result.vault)} placeholders: {median:.3f} ms")

    pieces = [answer_text[i : i + 7] for i in range(0, len(answer_text), 7)]
    chunks = [{"id": "c", "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]} for p in pieces]

    def stream() -> None:
        restorer = ChatStreamRestorer(result.vault)
        for chunk in chunks:
            restorer.restore_chunk(chunk)

    _best, median, _ = _timed(stream, 100)
    print(f"ChatStreamRestorer: {median * 1000 / len(chunks):.2f} us per chunk ({len(chunks)} chunks of 7 chars)")


# --- quality ----------------------------------------------------------------------------------


def _score(name: str, found: list[str], planted: list[tuple[str, str]], seconds: float, size: int) -> None:
    wanted = {value for _kind, value in planted}
    hits = wanted & set(found)
    false_positives = [value for value in found if value not in wanted]
    missed = sorted({kind for kind, value in planted if value not in hits})
    print(
        f"{name:<34} recall {len(hits):>3}/{len(wanted):<3} false positives {len(false_positives):>4}"
        f"   {seconds * 1000:>8.2f} ms per {size // 1000} KB"
        + (f"   missed kinds: {', '.join(missed)}" if missed else "")
    )
    for value in sorted(set(false_positives))[:4]:
        print(f"{'':<36}e.g. false positive {value[:60]!r}")


def _time_once(fn: Callable[[], list[str]], repeat: int = 5) -> tuple[list[str], float]:
    """The findings and the median seconds of ``repeat`` runs."""
    found = fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return found, statistics.median(samples)


def bench_quality(compare: bool) -> None:
    size = 10_000
    text, planted = make_text(size, seed=11, plant_every=400)
    print(f"\n== quality on a {size // 1000} KB labelled corpus ({len(planted)} planted values) ==")
    found, seconds = _time_once(lambda: [f.value for f in find_pii(text)], repeat=100)
    _score("switchboard (all detectors)", found, planted, seconds, size)
    if not compare:
        return
    try:
        from presidio_analyzer.predefined_recognizers import (
            CreditCardRecognizer,
            EmailRecognizer,
            IbanRecognizer,
            IpRecognizer,
            PhoneRecognizer,
            UsSsnRecognizer,
        )
    except ImportError:
        print("presidio-analyzer: not installed")
    else:
        recognizers = [EmailRecognizer(), PhoneRecognizer(), CreditCardRecognizer(), IbanRecognizer(),
                       UsSsnRecognizer(), IpRecognizer()]  # fmt: skip

        def presidio() -> list[str]:
            values = []
            for recognizer in recognizers:
                for hit in recognizer.analyze(text, entities=recognizer.supported_entities, nlp_artifacts=None):
                    if hit.score >= 0.5:
                        values.append(text[hit.start : hit.end])
            return values

        found, seconds = _time_once(presidio, repeat=3)
        _score("presidio pattern recognizers", found, [p for p in planted if p[0] != "SECRET"], seconds, size)
        try:
            from presidio_analyzer import AnalyzerEngine

            AnalyzerEngine()
            print("presidio AnalyzerEngine: loaded")
        except Exception as error:
            print(f"presidio AnalyzerEngine: unusable offline ({type(error).__name__}: needs a spaCy model download)")
    try:
        from detect_secrets.core.scan import scan_line
        from detect_secrets.settings import default_settings, transient_settings
    except ImportError:
        print("detect-secrets: not installed")
        return
    vendor_plugins = ["AWSKeyDetector", "GitHubTokenDetector", "OpenAIDetector", "SlackDetector", "StripeDetector",
                      "PrivateKeyDetector", "JwtTokenDetector", "BasicAuthDetector"]  # fmt: skip
    for label, settings in (
        ("detect-secrets (default plugins)", default_settings),
        (
            "detect-secrets (vendor plugins)",
            lambda: transient_settings({"plugins_used": [{"name": name} for name in vendor_plugins]}),
        ),
    ):

        def detect_secrets_scan(settings: Callable[[], Any] = settings) -> list[str]:
            values = []
            with settings():
                for line in text.splitlines():
                    values.extend(str(secret.secret_value) for secret in scan_line(line))
            return values

        found, seconds = _time_once(detect_secrets_scan, repeat=3)
        _score(label, found, [p for p in planted if p[0] == "SECRET"], seconds, size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--compare", action="store_true", help="also measure Presidio and detect-secrets")
    args = parser.parse_args()
    bench_ours()
    bench_quality(args.compare)


if __name__ == "__main__":
    main()

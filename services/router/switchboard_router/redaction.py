"""What a provider says back never carries a credential on to a client, the ledger or a log line.

Some providers echo what they were sent when they refuse a request (the
``Authorization`` header of a 401, the query string of a 404). Every error the
router builds from a provider's answer passes through :func:`redact`, with the
credentials of :func:`deployment_secrets`, in
:func:`switchboard_router.outcomes.service_error_from_upstream` — the one door
from a provider's bytes to a client's error and the router's log — before
anyone sees it. It removes:

* every credential the request was sent with: the deployment's ``api_key`` (the
  operator's, or the caller's own under BYOK), the secret-looking settings of
  its ``extra`` (AWS access key id, secret key and session token, ...), the
  values of its custom ``headers`` and of its ``api_base`` query string — as
  sent, percent-encoded and JSON-escaped, and their first characters where the
  text ends (adapters cut long answers short);
* the value of any credential header or query parameter quoted in the text
  (``Authorization: …``, ``"x-api-key": "…"``, ``?key=…``), ``Bearer``/``Basic``
  tokens and SigV4 signatures, whoever they belong to;
* anything shaped like a key that the privacy scanner recognises
  (:mod:`switchboard_router.privacy.secret_patterns`: ``sk-…``, ``AKIA…``,
  ``AIza…``, private keys, JWTs, passwords in URLs, ...).

It runs on error paths only; a successful answer never pays for it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, urlsplit

from switchboard_router.deployment import Deployment
from switchboard_router.privacy.detectors import find_all
from switchboard_router.privacy.secret_patterns import DETECTORS

#: What stands where a credential was.
MARK = "[redacted]"
#: Shorter configured values are not searched for as they are (a key "x" would blank every x);
#: the patterns below still catch them in a header, a parameter or after "Bearer".
MIN_SECRET_LENGTH = 8

#: The shortest start of a credential recognised at the very end of a text cut short.
_CUT_PREFIX = 4
#: Names of ``extra`` settings that hold credentials.
_SECRET_SETTING = re.compile(r"key|secret|token|passw|credential|signature", re.IGNORECASE)
_CREDENTIAL_HEADERS = (
    r"authorization|proxy-authorization|x-api-key|api-key|x-goog-api-key|x-amz-security-token"
    r"|x-amz-session-token|ocp-apim-subscription-key|cookie|set-cookie"
)
#: A credential header quoted with its value: ``Authorization: Bearer x``, ``'api-key': 'x'``, ``"x-api-key":"x"``.
_HEADER_VALUE = re.compile(
    rf"(?i)((?<![\w-])(?:{_CREDENTIAL_HEADERS})[\"']?\s*[:=]\s*[\"']?)([^\"'\r\n}}\]]+)"
)
#: A credential in a query string or form: ``?key=…``, ``&api_key=…``, ``X-Amz-Signature=…``.
_PARAMETER_VALUE = re.compile(
    r"(?i)((?<![\w-])(?:key|api[_-]?key|access[_-]?token|token|x-amz-signature|x-amz-security-token"
    r"|x-amz-credential|sig|signature|password)=)([^&\s\"'#,;<>]+)"
)
#: A token after an HTTP auth scheme; it must look like one (a digit or base64 padding), not like a word.
_SCHEME_VALUE = re.compile(r"(?i)(\b(?:bearer|basic)\s+)((?=[A-Za-z._~+/\-]*[0-9=])[A-Za-z0-9._~+/\-]{8,}=*)")
_SIGV4_FIELDS = re.compile(r"(?i)(\b(?:Signature|Credential)=)([^\s,\"']+)")


def deployment_secrets(deployment: Deployment) -> list[str]:
    """The credentials a call to ``deployment`` carries, each in the forms an echo may show it."""
    values: list[str] = []
    if deployment.api_key:
        values.append(deployment.api_key)
    for name, value in deployment.extra.items():
        if name == "headers" and isinstance(value, dict):
            values.extend(str(v) for v in value.values())
        elif isinstance(value, str) and _SECRET_SETTING.search(name):
            values.append(value)
    if "?" in deployment.api_base:
        values.extend(v for _, v in parse_qsl(urlsplit(deployment.api_base).query))
    forms: set[str] = set()
    for value in values:
        if len(value) >= MIN_SECRET_LENGTH:
            forms.update((value, quote(value, safe=""), value.replace("/", "\\/")))
    return sorted(forms, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with ``secrets`` and every credential-looking value replaced by :data:`MARK`."""
    if not text:
        return text
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MARK)
        text = _without_cut_secret(text, secret)
    text = _HEADER_VALUE.sub(_keep_name, text)
    text = _PARAMETER_VALUE.sub(_keep_name, text)
    text = _SCHEME_VALUE.sub(_keep_name, text)
    text = _SIGV4_FIELDS.sub(_keep_name, text)
    findings = find_all(text, DETECTORS)
    for finding in reversed(findings):
        text = text[:finding.start] + MARK + text[finding.end:]
    return text


def _without_cut_secret(text: str, secret: str) -> str:
    """``text`` without the start of ``secret`` it may end with (an answer cut short at a length limit)."""
    for size in range(min(len(secret), len(text)) - 1, _CUT_PREFIX - 1, -1):
        if text.endswith(secret[:size]):
            return text[:-size] + MARK
    return text


def _keep_name(match: re.Match[str]) -> str:
    """The name (header, parameter, scheme) stays readable; its value goes, unless it is already gone."""
    value = match.group(2)
    if not value.strip() or MARK[:-1] in value:
        return match.group(0)
    return match.group(1) + MARK

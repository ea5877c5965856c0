"""Dashboard forms → the JSON bodies of the admin API (``/key/generate``, ``/key/update``, ``/team/new``,
``/team/update``), so that the pages validate exactly as the API does (:mod:`switchboard_facade.admin_input`).

On an edit form a blank field clears its limit (``null``); on a create form it is left out. A select of
models posts nothing when nothing is picked, so edit forms carry a ``models_field`` marker: with it, no model
picked means every model.
"""

from __future__ import annotations

from typing import Any

from switchboard_common.errors import ServiceError
from switchboard_facade.ui.render import first
from switchboard_rules import fields

#: Form fields that are text (or USD amounts, validated by admin_input) on key and team forms.
_TEXT = ("budget_duration", "privacy_tier", "pii_policy", "max_budget", "max_daily_spend", "soft_budget",
         "alert_thresholds", "jurisdictions")
#: Fields never cleared by a blank (a key without an alias keeps the alias it has).
_KEEP_WHEN_BLANK = ("key_alias", "team_alias", "duration")


#: How the whole-number fields are named on the forms.
_COUNT_NAMES = {"rpm_limit": "RPM limit", "tpm_limit": "TPM limit", "max_parallel_requests": "Parallel requests",
                "min_output_tokens": "Minimum output tokens"}


class FormError(ValueError):
    pass


def message_of(err: FormError | ServiceError) -> str:
    """What a refused form shows: the form's own complaint, or the one auth or billing answered."""
    return str(err) if isinstance(err, FormError) else err.error.message


def _whole_numbers(form: dict[str, list[str]], body: dict[str, Any], keep_blank: bool) -> None:
    for name in fields.COUNT_LIMITS:
        if name not in form:
            continue
        value = first(form, name).replace(",", "").replace("_", "")
        if value:
            if not value.isdigit():
                raise FormError(f"{_COUNT_NAMES.get(name, name)} must be a whole number (or blank for no limit).")
            body[name] = int(value)
        elif keep_blank:
            body[name] = None


def _models(form: dict[str, list[str]], body: dict[str, Any]) -> None:
    picked = [m.strip() for m in form.get("models", []) if m.strip()]
    extra = [m.strip() for m in first(form, "models_extra").split(",") if m.strip()]
    if "models_field" in form or picked or extra:
        body["models"] = list(dict.fromkeys(picked + extra))


def _credentials(form: dict[str, list[str]], body: dict[str, Any]) -> None:
    """Bring your own key: a provider and its secret replace the subject's own credentials; "remove" drops them."""
    provider, secret = first(form, "credential_provider"), first(form, "credential_secret")
    if secret:
        if not provider:
            raise FormError("Pick the provider the API key is for.")
        body["provider_credentials"] = {provider: secret}
    elif first(form, "credentials_remove") == "on":
        body["provider_credentials"] = {}


def body_from_form(form: dict[str, list[str]], own: tuple[str, ...], *, keep_blank: bool = False) -> dict[str, Any]:
    """The admin API body of a key or team form; ``own`` are its text fields besides the shared ones."""
    body: dict[str, Any] = {}
    for name in (*own, *_TEXT):
        if name not in form:
            continue
        value = first(form, name)
        if value:
            body[name] = value
        elif keep_blank and name not in _KEEP_WHEN_BLANK:
            body[name] = None
    _whole_numbers(form, body, keep_blank)
    _models(form, body)
    _credentials(form, body)
    return body


def key_body(form: dict[str, list[str]], *, keep_blank: bool = False) -> dict[str, Any]:
    body = body_from_form(form, ("key_alias", "duration"), keep_blank=keep_blank)
    if "team_id" in form:  # a select: blank is "no team"
        team = first(form, "team_id")
        if team or keep_blank:
            body["team_id"] = team
    if first(form, "is_admin") == "on":
        body["is_admin"] = True
    return {k: v for k, v in body.items() if k in fields.KEY_JSON_FIELDS}


def team_body(form: dict[str, list[str]], *, keep_blank: bool = False) -> dict[str, Any]:
    body = body_from_form(form, ("team_id", "team_alias"), keep_blank=keep_blank)
    return {k: v for k, v in body.items() if k in fields.TEAM_JSON_FIELDS}

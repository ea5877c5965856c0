from __future__ import annotations

import pytest

from switchboard_router.privacy import find_pii

from . import secret_samples as s


def _secrets(text: str) -> list[str]:
    return [finding.value for finding in find_pii(text) if finding.kind == "SECRET"]


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"aws_access_key_id = {s.AWS_ACCESS_KEY_ID}\n", s.AWS_ACCESS_KEY_ID),
        (f'"AccessKeyId": "{s.AWS_ACCESS_KEY_ID}",', s.AWS_ACCESS_KEY_ID),
        (f'client = Github("{s.GITHUB_CLASSIC}")', s.GITHUB_CLASSIC),
        (f"GH_TOKEN={s.GITHUB_FINE_GRAINED}", s.GITHUB_FINE_GRAINED),
        (f"OPENAI_API_KEY={s.OPENAI_KEY}", s.OPENAI_KEY),
        (f"client = Anthropic(api_key='{s.ANTHROPIC_KEY}')", s.ANTHROPIC_KEY),
        (f"SLACK_TOKEN: {s.SLACK_BOT_TOKEN}", s.SLACK_BOT_TOKEN),
        (f"curl -X POST {s.SLACK_WEBHOOK} -d @msg.json", s.SLACK_WEBHOOK),
        (f"const key = '{s.GOOGLE_API_KEY}';", s.GOOGLE_API_KEY),
        (f"stripe.api_key = '{s.STRIPE_SECRET}'", s.STRIPE_SECRET),
        (f"STRIPE_WEBHOOK_SECRET={s.STRIPE_WEBHOOK}", s.STRIPE_WEBHOOK),
        (f"Authorization: Bearer {s.JWT}\n", s.JWT),
        (f"key = '''{s.PRIVATE_KEY}'''", s.PRIVATE_KEY),
    ],
)
def test_vendor_tokens_detected(text: str, secret: str) -> None:
    assert _secrets(text) == [secret]


@pytest.mark.parametrize(
    "text",
    [
        f"aws_secret_access_key = {s.AWS_SECRET_KEY}",
        f'"SecretAccessKey": "{s.AWS_SECRET_KEY}"',
        f"export AWS_SECRET_ACCESS_KEY={s.AWS_SECRET_KEY}",
        f"AWS_SECRET_KEY: '{s.AWS_SECRET_KEY}'",
    ],
)
def test_aws_secret_key_detected_next_to_its_name(text: str) -> None:
    assert _secrets(text) == [s.AWS_SECRET_KEY]


def test_aws_secret_key_alone_is_not_a_finding() -> None:
    # 40 base64 characters without the name: indistinguishable from a hash or a blob.
    assert _secrets(f"data = '{s.AWS_SECRET_KEY}'") == []


@pytest.mark.parametrize(
    ("text", "password"),
    [
        ("DATABASE_URL=postgres://app:s3cr3t-Pa55@db.internal:5432/app", "s3cr3t-Pa55"),
        ("postgresql://admin:hunter2@10.0.0.5/prod?sslmode=require", "hunter2"),
        ("MONGO=mongodb+srv://svc:Qw3rty!x@cluster0.ab1cd.mongodb.net/test", "Qw3rty!x"),
        ("REDIS_URL=redis://:redispass42@cache:6379/0", "redispass42"),
        ("amqp://guest:guestpw@rabbit:5672/", "guestpw"),
        ("https://deploy:tok3n@git.example.com/org/repo.git", "tok3n"),
    ],
)
def test_connection_string_password_detected(text: str, password: str) -> None:
    findings = [f for f in find_pii(text) if f.kind == "SECRET"]
    assert [f.value for f in findings] == [password]
    assert findings[0].detector == "url_password"


def test_private_key_in_json_escaped_string_and_truncated() -> None:
    escaped = s.PRIVATE_KEY.replace("\n", "\\n")
    assert _secrets(f'{{"key": "{escaped}"}}') == [escaped]
    truncated = "-----BEGIN OPENSSH PRIVATE KEY-----\n" + s.PRIVATE_KEY_BODY + "\nAbCd12\n\nthe rest is prose"
    assert _secrets(truncated) == ["-----BEGIN OPENSSH PRIVATE KEY-----\n" + s.PRIVATE_KEY_BODY + "\nAbCd12"]


@pytest.mark.parametrize(
    "text",
    [
        "postgres://user@localhost/db",  # no password
        "postgres://user:${DB_PASSWORD}@db/app",  # template
        "redis://:$REDIS_PASSWORD@cache:6379",
        "mysql://root:****@localhost",
        "http://user:password@proxy.example.com:3128",
        "amqp://guest:pass@rabbit",
        "postgres://app:your_password@db/app",
        "import sklearn  # sk-learn is not a key",
        "task-runner-abcdefghijklmnopqrstuvwxyz",
        "sk-this-is-a-long-kebab-case-identifier",  # no digit: not random
        s.JWT_LIKE_WITHOUT_ALG,
        "The file starts with -----BEGIN PRIVATE KEY----- and ends with -----END PRIVATE KEY-----.",
        "AKIA is the prefix of AWS access key ids",
        "ghp_short",
        "commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
        "id: 550e8400-e29b-41d4-a716-446655440000",
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "pk_live_51Habcdefghijklmnop publishable keys are public by design",
    ],
)
def test_not_secrets(text: str) -> None:
    assert _secrets(text) == []


def test_password_wins_over_email_overlap() -> None:
    findings = find_pii("redis://:pass99@cache.example.com:6379")
    assert [(f.kind, f.value) for f in findings] == [("SECRET", "pass99")]

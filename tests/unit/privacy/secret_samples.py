"""Fake credentials in the real formats, assembled at run time so the repository holds no token."""

from __future__ import annotations

import base64
import json

AWS_ACCESS_KEY_ID = "AKIA" + "IOSFODNN7" + "EXAMPLE"
AWS_SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY"
GITHUB_CLASSIC = "ghp_" + "16C7e42F292c6912E7710c838347Ae178B4a"
GITHUB_FINE_GRAINED = (
    "github_pat_" + "11ABCDEFG0123456789abc_" + "x9Y8z7W6v5U4t3S2r1Q0p9O8n7M6l5K4j3I2h1G0fEdCbA9876543210zz"
)
OPENAI_KEY = "sk-proj-" + "T3BlbkFJ" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6"
ANTHROPIC_KEY = "sk-ant-api03-" + "Zx9" * 30 + "AA"
SLACK_BOT_TOKEN = "xoxb-" + "123456789012-1234567890123-" + "AbCdEfGhIjKlMnOpQrStUvWx"
SLACK_WEBHOOK = "https://hooks.slack.com/services/" + "T00000000/B00000000/" + "XXXXXXXXXXXXXXXXXXXXXXXX"
GOOGLE_API_KEY = "AIza" + "SyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"
STRIPE_SECRET = "sk_" + "live_" + "4eC39HqLyjWDarjtT1zdp7dc"
STRIPE_WEBHOOK = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def _segment(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


JWT = ".".join(
    [
        _segment({"alg": "HS256", "typ": "JWT"}),
        _segment({"sub": "1234567890", "name": "Jane"}),
        "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ]
)
JWT_LIKE_WITHOUT_ALG = ".".join([_segment({"name": "john"}), _segment({"x": 1}), "c2lnbmF0dXJl"])
PRIVATE_KEY_BODY = "MIIEowIBAAKCAQEA" + "q7BFUQ2xKJtZ9f0rW3v8Lm5YpN1c4Hs6Ga2Db7Ek9Xj0Ru3Tz8Ol1Vw5Ic6Pn2Qy4Mh"
PRIVATE_KEY = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    + PRIVATE_KEY_BODY
    + "\n"
    + PRIVATE_KEY_BODY[::-1]
    + "\n-----END RSA PRIVATE KEY-----"
)

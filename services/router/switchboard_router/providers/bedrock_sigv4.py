"""AWS Signature Version 4 for Bedrock calls, using botocore's signer.

botocore is the reference implementation of SigV4 (canonical URI double
encoding, header canonicalisation, session tokens); re-implementing it would
only add a place for subtle signature mismatches. It is imported on first use, so
a router without Bedrock deployments does not carry it in memory. Signing is pure CPU work
(a few HMACs), so it is fine on the event loop.
"""

from __future__ import annotations

from collections.abc import Mapping

#: The SigV4 service name of bedrock-runtime.
SERVICE = "bedrock"


def sign_headers(
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    region: str,
    access_key_id: str,
    secret_access_key: str,
    session_token: str | None = None,
) -> dict[str, str]:
    """Returns ``headers`` plus ``Authorization``, ``X-Amz-Date`` (and ``X-Amz-Security-Token``).

    Every header passed in is signed, so pass only headers that the HTTP
    client will send unchanged (``Content-Type``, ``Accept``).
    """
    # Imported on the first Bedrock call: a router without Bedrock deployments never loads botocore.
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
    credentials = Credentials(access_key_id, secret_access_key, session_token or None)
    SigV4Auth(credentials, SERVICE, region).add_auth(request)
    return {name: str(value) for name, value in request.headers.items()}

"""A ledger row read back as the UsageRecord that /spend/logs and the dashboard show."""

from __future__ import annotations

from switchboard.v1 import billing_pb2
from switchboard_billing.models import UsageRow
from switchboard_billing.servicer import ledger_values, record_from_row
from switchboard_facade.routes.spend import usage_row_json


def test_a_provisional_row_says_so_in_the_record_and_in_spend_logs() -> None:
    # The facade's record of a call whose router never answered: billing.md lists `provisional` among the fields.
    event = billing_pb2.UsageEvent(request_id="req_1", key_id="k", model="m", started_at_ms=1, status="error",
                                   http_status=503, error_code="router_unavailable", provisional=True)
    record = record_from_row(UsageRow(**ledger_values(event, None)))
    assert record.event.provisional
    assert usage_row_json(record)["provisional"] is True
    settled = record_from_row(UsageRow(**ledger_values(billing_pb2.UsageEvent(request_id="req_2", key_id="k"), 0)))
    assert usage_row_json(settled)["provisional"] is False

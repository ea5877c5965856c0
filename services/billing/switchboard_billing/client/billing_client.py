"""The client half of billing: hold a request's cost before the provider is called, settle its usage after.

Every caller of billing outside the service uses this class: the facade (holds
for HTTP callers, settlement of calls the router never answered, the admin
API's spend and usage queries) and the router (holds for its own gRPC callers,
settlement of every call it served). It keeps:

- the rate card (:mod:`~switchboard_billing.client.rates`), to price holds locally;
- budget leases (:mod:`~switchboard_billing.client.leases`), to hold without a
  round trip each, invisibly to users;
- the durable outbox (:mod:`~switchboard_billing.client.outbox`): usage is
  journaled before anything else happens to it and delivered in batches, and the
  usage so far of a request still running is kept for the next process in case
  this one dies.

A request with no budget skips billing entirely when the rate card says its
model is servable: there is nothing to hold and nothing to refuse. If billing
is unreachable such a request still goes ahead (its usage waits in the
outbox); a request with a budget does not, since nothing could then stop it
from overspending.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc

from switchboard.v1 import billing_pb2, billing_pb2_grpc
from switchboard_billing.client.holds import Hold, budget_limits, key_budgets, model_budget
from switchboard_billing.client.leases import BudgetLeases, Lease
from switchboard_billing.client.outbox import SETTLE_BATCH_METHOD, Outbox, settle_batch_request
from switchboard_billing.client.rates import RateCards
from switchboard_billing.client.stored_models import ModelWatch, StoredModelsClient
from switchboard_billing.quote import worst_case
from switchboard_common.errors import Kind, ServiceError, from_rpc_error

if TYPE_CHECKING:  # the key's facts, as auth's client types them (no run-time dependency on auth)
    from switchboard_auth.client import KeyContext, Limits

#: How much longer than the completion timeout a hold lives, for the settlement's trip through an outbox.
_TTL_MARGIN_SECONDS = 300.0
#: How many times a request waits for its subject's lease (a lease being granted, a heartbeat raising its
#: allowance) before billing holds it by itself.
_LEASE_WAITS = 8


@dataclass(slots=True)
class BillingClientSettings:
    #: Seconds a call to billing may take before it fails as billing unavailable (503).
    timeout_seconds: float = 5.0
    #: Seconds the longest request may take (holds live this long, plus a margin for settlement).
    completion_timeout_seconds: float = 900.0
    #: Most requests one budget lease is sized for; 0: billing holds every request itself.
    budget_lease_units: int = 1024
    #: Seconds between a holder's heartbeats (leases it stops renewing lapse within a few of them).
    lease_heartbeat_seconds: float = 0.5


class BillingClient:
    def __init__(self, channel: grpc.aio.Channel, *, holder: str, outbox_dir: Path,
                 metadata: tuple[tuple[str, str], ...] = (), settings: BillingClientSettings | None = None) -> None:
        self.settings = settings or BillingClientSettings()
        self.stub = billing_pb2_grpc.BillingStub(channel)
        #: SettleBatch taking its request already encoded (see :func:`settle_batch_request`).
        self._settle_batch: grpc.aio.UnaryUnaryMultiCallable[bytes, billing_pb2.SettleBatchResponse] = \
            channel.unary_unary(SETTLE_BATCH_METHOD, request_serializer=None,
                                response_deserializer=billing_pb2.SettleBatchResponse.FromString)
        self.metadata = metadata
        #: Who holds ("facade@host:pid"), for billing's logs and reservations table.
        self.holder = holder
        timeout = self.settings.timeout_seconds
        self.rates = RateCards(self.stub, metadata, timeout)
        self.leases = BudgetLeases(self.stub, metadata, timeout, holder, self.settings.budget_lease_units,
                                   heartbeat_seconds=self.settings.lease_heartbeat_seconds)
        self.outbox = Outbox(outbox_dir, self._deliver, prefix=holder.split("@", 1)[0])
        #: Models added at run time (the admin API's /model/* writes and reads them).
        self.models = StoredModelsClient(self.stub, self._query)

    async def start(self) -> None:
        await self.outbox.start()
        await self.rates.fetch()

    async def close(self, timeout: float) -> None:
        """Delivers what is pending (what is left stays journaled) and returns the leases' balances."""
        await self.outbox.stop(timeout)
        await self.leases.close(timeout)

    # -- holds ---------------------------------------------------------------------------------

    async def hold(self, *, request_id: str, key: KeyContext, model: str, prompt_tokens_bound: int,
                   max_output_tokens: int, started_at_ms: int, choices: int = 1) -> Hold:
        """Holds the most the request can cost against its key's, team's and user's budgets; raises ServiceError (the
        429 budget denial, the 503 of an unpriced model or of billing unreachable while a budget applies, the 400 of
        a request for several answers (``choices``, OpenAI's ``n``) under a budget, which holds one answer).

        ``started_at_ms`` is when the request started, as its usage event will say: it is charged to the budget
        windows of that instant. The hold's ``started_at_ms`` is the instant to date that event by (the same, unless
        this holder's clock is far off billing's)."""
        budgets = key_budgets(key)
        budgeted = budgets.applies(key, model)
        if budgeted and choices > 1:
            raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST,
                               f"'n' of {choices} is not served on a key with a budget: a budget holds one answer at "
                               "a time, so several in one request could pass it. Send n: 1, and one request per "
                               "answer.", param="n", code="several_answers")
        rates = self.rates.lookup(model)
        if not budgeted and rates is not None and rates.servable:
            return Hold(request_id, started_at_ms=started_at_ms)  # nothing to hold, nothing to refuse
        byok = budgets.byok
        subject = budgets.subject_for(key, model) if budgeted else ()
        unit = 0
        if budgeted and rates is not None and rates.servable and rates.priced and self.leases.enabled:
            quote = worst_case(rates, prompt_tokens_bound, max_output_tokens, byok, self.rates.default_output_tokens)
            unit = quote.micros
            lease = await self._take_from_lease(subject, unit, started_at_ms)
            if lease is not None:
                return Hold(request_id, lease.lease_id, unit, quote.output_tokens, answer=lease.answer,
                            started_at_ms=started_at_ms)
        return await self._reserve(request_id, key, model, prompt_tokens_bound, max_output_tokens, byok, subject,
                                   unit, budgeted, started_at_ms)

    async def _take_from_lease(self, subject: tuple[Any, ...], unit: int, started_at_ms: int) -> Lease | None:
        """The subject's lease for this request, waiting for the lease another request is asking for, or for a
        heartbeat that raises its allowance; None when the request must be held by billing itself."""
        for _ in range(_LEASE_WAITS):
            lease = self.leases.take(subject, unit, started_at_ms)
            if lease is not None:
                return lease
            coming = self.leases.lease_coming(subject)
            if coming is not None:
                await asyncio.shield(coming)
            elif not (self.leases.short_of_allowance(subject, unit, started_at_ms)
                      and await self.leases.raise_allowance(unit)):
                return None  # no lease can cover it, or billing did not answer the heartbeat: ask billing itself
        return self.leases.take(subject, unit, started_at_ms)

    async def _reserve(self, request_id: str, key: KeyContext, model: str, prompt_tokens_bound: int,
                       max_output_tokens: int, byok: Collection[str], subject: tuple[Any, ...], unit: int,
                       budgeted: bool, started_at_ms: int) -> Hold:
        request = billing_pb2.ReserveRequest(
            request_id=request_id, key_id=key.key_id, team_id=key.team_id, key_limits=budget_limits(key.limits),
            model=model, prompt_tokens_bound=prompt_tokens_bound, max_output_tokens=max_output_tokens,
            ttl_seconds=self.settings.completion_timeout_seconds + _TTL_MARGIN_SECONDS, byok_providers=byok,
            holder=self.holder, renew_seconds=self.leases.renew_seconds, key_alias=key.key_alias,
            team_alias=key.team_alias, started_at_ms=started_at_ms)
        if key.team_id:
            request.team_limits.CopyFrom(budget_limits(key.team_limits))
        if key.user_id:
            request.user_id = key.user_id
            request.user_limits.CopyFrom(budget_limits(key.user_limits))
        on_model = model_budget(key, model)
        if on_model is not None:
            request.model_limits.CopyFrom(on_model)
        if budgeted and not self.leases.pays_for_later(subject, started_at_ms):
            handed_back = self.leases.handing_back(subject)
            if handed_back is not None:
                request.return_lease.CopyFrom(handed_back)
            ask = self.leases.ask(subject, unit)
            if ask is not None:
                request.lease_ask.CopyFrom(ask)
        asked_at = time.monotonic()
        asking = request.HasField("lease_ask")
        try:
            answer: billing_pb2.ReserveResponse = await self.stub.Reserve(
                request, timeout=self.settings.timeout_seconds, metadata=self.metadata)
        except grpc.aio.AioRpcError as exc:
            err: ServiceError = from_rpc_error(exc, "billing")
            if asking:  # the requests waiting for this lease learn billing is out of reach at once, not in turn
                self.leases.answered(subject, err if err.error.code == "billing_unavailable" else None)
            if err.error.code == "billing_unavailable" and not budgeted:
                # no budget to protect: serve, the usage waits in the outbox
                return Hold(request_id, started_at_ms=started_at_ms)
            raise err from None
        except BaseException:
            if asking:
                self.leases.answered(subject)
            raise
        if asking:
            self.leases.granted(subject, answer, asked_at, answer.held_micros or unit)
            self.leases.answered(subject)
        if answer.held_micros > 0:
            self.leases.holding(request_id, request.ttl_seconds)
        return Hold(request_id, "", answer.held_micros, answer.output_tokens if answer.held_micros else 0,
                    answer.output_capped, answer, started_at_ms=answer.charged_at_ms or started_at_ms)

    def end(self, hold: Hold | None) -> None:
        """The request ended (however): a hold taken from a lease no longer counts as in flight here."""
        if hold is None or hold.ended:
            return
        hold.ended = True
        if hold.lease_id:
            self.leases.ended(hold.lease_id, hold.micros)

    # -- settlement ----------------------------------------------------------------------------

    def settle(self, event: billing_pb2.UsageEvent) -> None:
        """Journals the finished request's usage and queues it for billing; never blocks on billing."""
        self.outbox.put(event)

    def progress(self, event: billing_pb2.UsageEvent) -> None:
        """Records what a request still running has consumed so far, to be billed by the next process if this one
        dies before the request settles (:meth:`Outbox.progress`); never blocks, never sent by this process."""
        self.outbox.progress(event)

    async def _deliver(self, events: list[bytes]) -> None:
        """Sends the outbox's encoded events as one SettleBatch, without decoding and encoding them again."""
        await self._settle_batch(settle_batch_request(events), timeout=self.settings.timeout_seconds,
                                 metadata=self.metadata)

    # -- queries -------------------------------------------------------------------------------

    async def _query(self, rpc: Any, request: Any) -> Any:
        try:
            return await rpc(request, timeout=self.settings.timeout_seconds, metadata=self.metadata)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, "billing") from None

    async def list_usage(self, request: billing_pb2.ListUsageRequest) -> billing_pb2.ListUsageResponse:
        return await self._query(self.stub.ListUsage, request)  # type: ignore[no-any-return]  # the stub's answer

    async def summarize_usage(self, request: billing_pb2.SummarizeUsageRequest
                              ) -> billing_pb2.SummarizeUsageResponse:
        return await self._query(self.stub.SummarizeUsage, request)  # type: ignore[no-any-return]  # idem

    async def list_alerts(self, request: billing_pb2.ListAlertsRequest) -> billing_pb2.ListAlertsResponse:
        """Budget alerts and spend reports, newest first, with their webhook deliveries."""
        return await self._query(self.stub.ListAlerts, request)  # type: ignore[no-any-return]  # the stub's answer

    async def catalog(self) -> billing_pb2.GetCatalogResponse:
        return await self._query(self.stub.GetCatalog, billing_pb2.GetCatalogRequest())  # type: ignore[no-any-return]  # idem

    def watch_models(self, listener: Callable[[billing_pb2.StoredModels], Awaitable[None]]) -> ModelWatch:
        """A follower of the stored models (a router's); ``start`` it, ``close`` it at shutdown."""
        return ModelWatch(self.stub, self.metadata, listener)

    async def standings(self, subjects: Sequence[tuple[str, str, Limits]]
                        ) -> list[billing_pb2.SubjectBudgets]:
        """Where each (scope "key"/"team"/"user", id, limits) stands: spend in its window, today, held, resets."""
        request = billing_pb2.GetBudgetsRequest(subjects=[
            billing_pb2.BudgetSubject(scope=scope, subject_id=subject_id, limits=budget_limits(limits))
            for scope, subject_id, limits in subjects])
        answer = await self._query(self.stub.GetBudgets, request)
        return list(answer.subjects)

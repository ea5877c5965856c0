"""SIGKILL of each service at a random instant under load, then a restart: nothing lost, nothing twice.

Each round sends bounded concurrent load (streams and whole answers; a key with
no budget, one with room, one whose budget runs out) through the facade, kills
one service with SIGKILL at a seeded random instant, starts it again on its
address and data (a restarted container), and lets the load go on. Then:

* every answer the fake provider served whole has exactly one ledger row (by its
  ``response_id``, and under the request id its client was given), and every row
  naming a provider answer is a call the provider began — except, when the router
  itself dies, answers that were reaching it as it died (it alone had their usage,
  and it was gone), and when the facade dies, answers sent as the router ended its
  calls (each such call is billed for its prompt as ``cancelled``: no more than
  there are such rows);
* every whole answer a client got has its request id's row, a success;
* no request id and no provider answer is billed twice;
* no budget is overspent;
* clients got only 200s, clean 503s and budget 429s in OpenAI's dialect (a broken
  connection only from the facade that died);
* with nothing in flight, billing holds nothing for the keys within seconds: a
  killed facade's budget lease lapses instead of holding money for the reservation TTL.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections import Counter

import pytest

from tests.faults.conftest import (
    ROUNDS,
    Load,
    Rig,
    by_request_id,
    clean_errors,
    fault_seed,
    ledger,
    wait_ready,
)

pytestmark = pytest.mark.slow

#: Seconds of load a round sends; the kill falls between KILL_AFTER seconds of its start.
LOAD_SECONDS = 4.0
KILL_AFTER = (0.8, 2.8)
#: How long after the load the ledger may take to show every served call (outboxes replay, batches linger).
SETTLE_SECONDS = 20.0
#: How long after the kill billing may still hold money for a key with nothing in flight: a dead facade's leases,
#: and the holds billing reserved for its requests one by one, lapse 5 s after its last heartbeat and count for
#: nothing 5 s later (idle leases of the living return in 1 s).
RELEASE_SECONDS = 15.0
#: How soon after a facade dies the router has ended its calls (an answer sent before that may go unread).
ABANDON_WINDOW = 1.0
#: Calls lost with a dead router never come: how long to give the others.
ROUTER_SETTLE_SECONDS = 6.0
#: A router that dies takes with it the usage of the answers reaching it: those served this close to its death.
ROUTER_DEATH_WINDOW = 2.0


@pytest.mark.parametrize("victim", ["facade", "router", "billing", "auth"])
def test_sigkill_at_a_random_instant_bills_every_served_call_once(rig: Rig, victim: str) -> None:
    seed = fault_seed()
    for round_number in range(ROUNDS):
        rng = random.Random(seed * 1000 + round_number)  # each round replays alone, whatever the others drew
        kill_round(rig, victim, rng, f"seed {seed}, round {round_number + 1} of {ROUNDS}")


def kill_round(rig: Rig, victim: str, rng: random.Random, where: str) -> None:
    gw, fake = rig.gateway, rig.fake
    tag = f"{victim}-{time.monotonic_ns()}"
    plain = rig.key(f"kill-plain-{tag}")
    roomy = rig.key(f"kill-roomy-{tag}", max_budget_micros=5_000_000)
    tight = rig.key(f"kill-tight-{tag}", max_budget_micros=2_500)
    keys = [plain, roomy, tight]
    begun_before = set(fake.begun)
    load = Load(gw.base_url, keys, rng)
    kill_after = rng.uniform(*KILL_AFTER)
    down_for = rng.uniform(0.0, 0.5)

    async def load_and_kill() -> float:
        running = asyncio.create_task(load.run(LOAD_SECONDS))
        await asyncio.sleep(kill_after)
        process = gw.processes[victim].proc
        process.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        await asyncio.to_thread(process.wait, 10)
        await asyncio.sleep(down_for)
        rig.restart(victim)
        await running
        return killed_at

    killed_at = asyncio.run(load_and_kill())
    context = (f"{where}: {victim} killed {kill_after:.2f} s into the load, down {down_for:.2f} s, "
               f"{len(load.outcomes)} requests")
    wait_ready(gw.base_url)

    # Every served answer reaches the ledger once the outboxes have replayed.
    whole = {o.request_id for o in load.outcomes if o.complete}

    def unbilled() -> dict[str, float]:
        rows = ledger(rig, keys)
        billed = {r.response_id for r in rows}
        missing = {a: t for a, t in fake.served.items() if a not in begun_before and a not in billed}
        return {**missing, **{r: 0.0 for r in whole - {r.request_id for r in rows}}}

    # (Calls lost with a dead router never come: wait less for them.)
    deadline = time.monotonic() + (ROUTER_SETTLE_SECONDS if victim == "router" else SETTLE_SECONDS)
    missing = unbilled()
    while missing and time.monotonic() < deadline:
        time.sleep(0.25)
        missing = unbilled()
    rows = ledger(rig, keys)
    begun = fake.begun - begun_before
    served = {a for a in fake.served if a in begun}
    statuses = Counter(o.status for o in load.outcomes)
    context += f"; answers {dict(statuses)}, provider served {len(served)}, ledger rows {len(rows)}"

    print(f"{context}; unbilled {len(missing)}")
    duplicated_requests = [r for r, n in Counter(r.request_id for r in rows).items() if n > 1]
    assert not duplicated_requests, f"{context}: request ids billed twice: {duplicated_requests}"
    answer_rows = Counter(r.response_id for r in rows if r.response_id)
    assert not [a for a, n in answer_rows.items() if n > 1], f"{context}: provider answers billed twice"
    assert set(answer_rows) <= begun, f"{context}: rows for answers no provider began: {set(answer_rows) - begun}"
    if victim == "router":
        late = {a: round(t - killed_at, 3) for a, t in missing.items() if abs(t - killed_at) >= ROUTER_DEATH_WINDOW}
        assert not late, f"{context}: served far from the router's death and never billed: {late}"
        assert len(missing) <= 24, f"{context}: {len(missing)} calls lost with the router"
        for answer in missing:  # their requests' rows, if any: the facade's record of a call the router never answered
            outcome = load.outcome_of(fake.prompts.get(answer, ""))
            print(f"lost with the router: {answer} for {outcome.request_id if outcome else '?'} "
                  f"({outcome.status if outcome else '?'}), row: "
                  f"{next((r for r in rows if outcome and r.request_id == outcome.request_id), None)}")
    elif victim == "facade":
        # The router ends the calls of a caller that died (and bills each for its prompt, its answer unknown); an
        # answer that was on its way as it did so was sent by the provider but never read.
        in_the_race = {a: t for a, t in missing.items() if -0.05 < t - killed_at < ABANDON_WINDOW}
        late = {a: round(t - killed_at, 3) for a, t in missing.items() if a not in in_the_race}
        assert not late, f"{context}: served and never billed (s after the kill): {late}"
        abandoned = sum(1 for r in rows if r.abandoned)
        assert len(in_the_race) <= abandoned, \
            f"{context}: {len(in_the_race)} answers unread as the facade died, {abandoned} calls abandoned"
        if in_the_race:
            print(f"answers unread as the facade died (s after the kill): "
                  f"{ {a: round(t - killed_at, 3) for a, t in in_the_race.items()} }; calls abandoned: {abandoned}")
    else:
        assert not missing, f"{context}: served and never billed (s after the kill): " \
                            f"{ {a: round(t - killed_at, 3) for a, t in missing.items()} }"

    mismatched = by_request_id(load, fake, rows, served - set(missing))
    assert not mismatched, f"{context}: {mismatched[:5]}"
    by_request = {r.request_id: r for r in rows}
    for outcome in load.outcomes:
        if outcome.complete:
            row = by_request.get(outcome.request_id)
            assert row is not None, f"{context}: a whole answer ({outcome.request_id}) has no ledger row"
            assert row.status == "success" and row.response_id, f"{context}: {row}"
    for key in (roomy, tight):
        spent = sum(r.cost_micros for r in rows if r.key_id == key.key_id)
        assert key.max_budget_micros is not None and spent <= key.max_budget_micros, \
            f"{context}: key {key.key_id} spent {spent} µ$ of a {key.max_budget_micros} µ$ budget"

    wrong = clean_errors(load.outcomes)
    assert not wrong, f"{context}: {wrong[:5]}"
    broken = [o for o in load.outcomes if o.status == 0]
    if victim != "facade":
        assert not broken, f"{context}: connections broke though the facade lived: {broken[:3]}"

    # With nothing in flight, nothing stays held: a dead facade's lease lapses within seconds.
    deadline = killed_at + RELEASE_SECONDS
    held = asyncio.run(rig.held_micros(roomy))
    while held and time.monotonic() < deadline:
        time.sleep(0.25)
        held = asyncio.run(rig.held_micros(roomy))
    print(f"{context}: nothing held for the roomy key {time.monotonic() - killed_at:.1f} s after the kill")
    assert held == 0, f"{context}: {held} µ$ still held for the key {time.monotonic() - killed_at:.1f} s after " \
                      f"the kill, with nothing in flight"
    assert not load.in_flight
    # The key with no budget is served again at once.
    again = Load(gw.base_url, [plain], rng)
    asyncio.run(again.run(0.2))
    assert {o.status for o in again.outcomes} == {200}, f"{context}: {[o.body for o in again.outcomes]}"

"""fleetfront-mobile through its generated Python bindings, against a real server.

Run by the server's integration test `server/tests/mobile.rs` as `test_client.py <till|driver>`;
the test builds the library, generates the bindings into a temporary directory, serves a fresh
database and passes:

  PYTHONPATH              the directory holding fleetfront_mobile.py and the library
  FLEETFRONT_URL          the server's base URL
  FLEETFRONT_EMAIL        the account's email (a shop owner for `till`, a driver for `driver`)
  FLEETFRONT_PASSWORD     its password
  FLEETFRONT_ORDERS       `till`: two pending order ids of the shop, comma-separated
  FLEETFRONT_DIR          a directory for the device's database

`till`: the till signs in, syncs and sees the pending orders; a refused change surfaces as the
`Refused` error with its code; with the server out of reach (the same database opened against a
dead address) an order accepted shows at once and waits; back online one sync sends it, and the
background loop sends the next change by itself.

`driver`: the driver accepts the offer of an order and finishes the delivery with the server
out of reach (too much cash is refused on the device), and one sync sends the steps.

The last line of stdout is JSON for the Rust side to check against the server's database.
Standard library only.
"""

import asyncio
import json
import os
import sys
import time

import fleetfront_mobile as ff

# Port 9 (discard) on loopback: nothing listens, so every request fails to connect.
DEAD_URL = "http://127.0.0.1:9"


def status_of(client, order_id):
    row = client.row("order", order_id)
    assert row is not None, f"order {order_id} is not on the device"
    return json.loads(row)["status"]


async def expect_error(variant, awaitable):
    """Awaits `awaitable`, which must fail with `variant`; returns the error."""
    try:
        result = await awaitable
    except variant as e:
        assert e.code, f"{variant.__name__} without a code: {e!r}"
        assert e.detail, f"{variant.__name__} without a detail: {e!r}"
        return e
    raise AssertionError(f"expected {variant.__name__}, got {result!r}")


async def till():
    url = os.environ["FLEETFRONT_URL"]
    email = os.environ["FLEETFRONT_EMAIL"]
    password = os.environ["FLEETFRONT_PASSWORD"]
    first, second = os.environ["FLEETFRONT_ORDERS"].split(",")
    db = os.path.join(os.environ["FLEETFRONT_DIR"], "till.sqlite")

    # ---- online: sign in, sync, see the orders -----------------------------------------
    till = ff.FleetfrontClient(db, url)
    assert till.current_user() is None
    await expect_error(ff.FleetfrontError.NotSignedIn, till.sync_now())
    await expect_error(ff.FleetfrontError.NotSignedIn, till.accept_order(first, 10))
    wrong = await expect_error(ff.FleetfrontError.Server, till.login(email, password + "x"))
    assert wrong.code == "invalid_credentials" and wrong.status == 401, wrong
    await expect_error(ff.FleetfrontError.InvalidArgument, till.accept_order("not-an-id", 10))

    me = await till.login(email, password)
    assert me.email == email and me.kind == "staff", me
    assert me.business_id is not None and me.memberships, me
    assert till.current_user() == me

    report = await till.sync_now()
    assert report.pulls >= 1 and report.rows_changed >= 2, report
    orders = {row.id: json.loads(row.json) for row in till.rows("order")}
    assert set(orders) == {first, second}, orders
    assert orders[first]["status"] == "pending", orders[first]
    status = till.status()
    assert status.online and status.pending == 0 and status.last_error is None, status
    assert status.last_synced_at_ms is not None, status

    # Staff cannot cancel a pending order (they reject it): refused on the device, nothing
    # queued.
    refused = await expect_error(
        ff.FleetfrontError.Refused, till.cancel_order(first, "Out of soup")
    )
    assert till.status().pending == 0
    del till

    # ---- offline: the same device, the server out of reach --------------------------------
    offline = ff.FleetfrontClient(db, DEAD_URL)
    assert offline.current_user() == me, "the session is kept on the device"
    accepted_at_ms = int(time.time() * 1000) - 60_000
    accept = await offline.mutate(
        "order.accept@1",
        json.dumps({"order_id": first, "prep_time": 10}),
        accepted_at_ms,
    )
    assert accept.seq >= 1 and accept.name == "order.accept@1", accept
    assert accept.action_time_ms == accepted_at_ms, accept
    assert status_of(offline, first) == "confirmed", "the change shows at once"
    assert offline.status().pending == 1

    down = await expect_error(ff.FleetfrontError.Offline, offline.sync_now())
    assert down.code == "offline", down
    status = offline.status()
    assert not status.online and status.pending == 1 and status.last_error, status
    assert status_of(offline, first) == "confirmed"
    del offline

    # ---- back online: one round sends it; then the background loop sends the next --------
    till = ff.FleetfrontClient(db, url)
    report = await till.sync_now()
    assert (report.applied, report.rejected) == (1, 0), report
    status = till.status()
    assert status.online and status.pending == 0 and status.last_error is None, status
    assert status_of(till, first) == "confirmed"
    assert till.rejections() == []

    till.start_background(200)
    background = await till.accept_order(second, 15)
    assert status_of(till, second) == "confirmed"
    deadline = time.monotonic() + 30
    while till.status().pending > 0:
        assert time.monotonic() < deadline, f"background sync did not send: {till.status()}"
        await asyncio.sleep(0.05)
    till.stop_background()
    assert till.status().online

    return {
        "refused_code": refused.code,
        "offline_mutation_id": accept.id,
        "offline_action_time_ms": accepted_at_ms,
        "background_mutation_id": background.id,
    }


async def driver():
    url = os.environ["FLEETFRONT_URL"]
    db = os.path.join(os.environ["FLEETFRONT_DIR"], "driver.sqlite")

    phone = ff.FleetfrontClient(db, url)
    me = await phone.login(os.environ["FLEETFRONT_EMAIL"], os.environ["FLEETFRONT_PASSWORD"])
    assert me.kind == "driver", me
    await phone.sync_now()
    offers = phone.rows("offer")
    assert len(offers) == 1, offers
    offer = offers[0]
    delivery = json.loads(offer.json)["delivery_id"]
    await phone.accept_offer(offer.id)
    assert phone.rows("offer") == []
    report = await phone.sync_now()
    assert (report.applied, report.rejected) == (1, 0), (report, phone.rejections())
    held = json.loads(phone.row("delivery", delivery))
    assert held["status"] == "assigned", held
    total = held["order"]["total_minor"]
    del phone

    # In a tunnel: the whole delivery, each step at its own time.
    offline = ff.FleetfrontClient(db, DEAD_URL)
    now_ms = int(time.time() * 1000)
    picked_at_ms, delivered_at_ms = now_ms - 20 * 60_000, now_ms - 2 * 60_000
    Step, Status = ff.DeliveryStep, ff.DeliveryStepStatus
    await offline.delivery_step(delivery, Step(status=Status.ARRIVED_AT_STORE), picked_at_ms)
    await offline.delivery_step(delivery, Step(status=Status.PICKED_UP), picked_at_ms)
    too_much = Step(status=Status.DELIVERED, cash_collected_minor=total + 500)
    await expect_error(
        ff.FleetfrontError.Refused, offline.delivery_step(delivery, too_much, delivered_at_ms)
    )
    delivered = Step(status=Status.DELIVERED, cash_collected_minor=total)
    step = await offline.delivery_step(delivery, delivered, delivered_at_ms)
    assert step.action_time_ms == delivered_at_ms, step
    assert json.loads(offline.row("delivery", delivery))["status"] == "delivered"
    assert offline.status().pending == 3
    await expect_error(ff.FleetfrontError.Offline, offline.sync_now())
    del offline

    phone = ff.FleetfrontClient(db, url)
    report = await phone.sync_now()
    assert (report.applied, report.rejected) == (3, 0), (report, phone.rejections())
    # A finished delivery leaves the driver's rows.
    assert phone.row("delivery", delivery) is None
    assert phone.status().pending == 0
    return {"delivery_id": delivery, "delivered_at_ms": delivered_at_ms}


if __name__ == "__main__":
    scenario = {"till": till, "driver": driver}[sys.argv[1]]
    print(json.dumps(asyncio.run(scenario())))
    sys.stdout.flush()

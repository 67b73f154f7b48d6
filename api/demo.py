"""`ontime demo`: a few shippers, their shipments, and carriers posting events
at a chosen rate, through the HTTP API of a running ontime, so that the board,
the console and the tracking pages come alive. It makes its own keys in the
database the server uses (as `ontime serve` finds it), unless given one."""

from __future__ import annotations

import asyncio
import random
import sys
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx

from api.shell import keys
from api.shell.database import resolve_database_url
from api.shell.settings import Settings

SHIPPERS = [
    ("Tienda Sol", "Europe/Madrid", "ES", [("Begoña Ruiz", "+34 612 345 678"), ("Iker Etxeberria", "+34 699 100 200")]),
    ("Acme Parts", "Europe/London", "GB", [("Olivia Hart", "+44 7700 900123"), ("Sam Patel", "+44 7700 900456")]),
    ("Nordic Goods", "Europe/Berlin", "DE", [("Jonas Weber", "+49 151 2345 6789"), ("Lea Vogel", "+49 160 9876 543")]),
]
CITIES = {
    "ES": ["Madrid", "Zaragoza", "Valencia"],
    "GB": ["Leeds", "Bristol", "London"],
    "DE": ["Berlin", "Köln", "Hamburg"],
}
CARRIERS = ["dhl", "ups", "gls", "correos"]
JOURNEY = ["in_transit", "in_transit", "out_for_delivery", "delivered"]
REASONS = ["weather", "carrier_delay", "address_issue", "recipient_unavailable"]


def ascii_name(person: str) -> str:
    """ "Begoña Ruiz" -> "begona": an address any mail system takes."""
    first = unicodedata.normalize("NFKD", person.split()[0].lower())
    return first.encode("ascii", "ignore").decode()


@dataclass
class Parcel:
    id: str
    country: str
    step: int = 0
    done: bool = False
    events: int = field(default=0)
    promised_by: datetime | None = None


async def _keys(settings: Settings) -> tuple[str, str]:
    """An admin key and a support key for the demo, made in the server's database."""
    import asyncpg

    conn = await asyncpg.connect(resolve_database_url(settings))
    try:
        _, admin = await keys.create_key(conn, "admin", None, None, "demo")
        _, support = await keys.create_key(conn, "support", None, None, "demo support desk")
    finally:
        await conn.close()
    return admin, support


async def run(
    url: str, admin_key: str | None, support_key: str | None, rate: float, seconds: float, per_shipper: int
) -> None:
    if admin_key is None:
        admin_key, support_key = await _keys(Settings.from_env())
    rng = random.Random(7)
    headers = {"Authorization": f"Bearer {admin_key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as api:
        try:
            await api.get("/readyz")
        except httpx.HTTPError:
            raise SystemExit(f"ontime demo: nothing answers at {url}; start it first with `make run`") from None
        parcels: list[Parcel] = []
        now = datetime.now(UTC)
        print("seeding shippers and shipments…", file=sys.stderr)
        for name, zone, country, people in SHIPPERS:
            account = (await api.post("/v1/accounts", json={"name": name, "timezone": zone, "country": country})).json()
            customer = (
                await api.post(
                    "/v1/keys", json={"role": "customer", "account_id": account["id"], "name": f"{name} (demo)"}
                )
            ).json()
            print(f"  {name}: customer key {customer['secret']}  (sign in at {url}/board)", file=sys.stderr)
            for n in range(per_shipper):
                person, phone = people[n % len(people)]
                # a few promises fall due during the demo, so the board's late list fills in
                promise = now + (timedelta(seconds=30 + 20 * n) if n % 4 == 0 else timedelta(days=1 + n % 3))
                body = {
                    "carrier": CARRIERS[n % len(CARRIERS)],
                    "tracking_number": f"DEMO{country}{int(now.timestamp()) % 100000:05d}{n:03d}",
                    "promised_by": promise.isoformat(),
                    "reference": f"order-{1000 + n}",
                    "account_id": account["id"],
                    "origin": {"city": CITIES[country][0], "country": country},
                    "destination": {"city": CITIES[country][1 + n % 2], "country": country},
                    "recipient": {"name": person, "phone": phone, "email": f"{ascii_name(person)}@example.com"},
                }
                created = await api.post("/v1/shipments", json=body)
                if created.status_code == 201:
                    parcels.append(Parcel(created.json()["id"], country, promised_by=promise))
        if support_key:
            print(f"  support key {support_key}  (sign in at {url}/console)", file=sys.stderr)
        print(f"posting carrier events at {rate:g}/s; Ctrl-C stops", file=sys.stderr)
        started, posted, delivered, held = time.monotonic(), 0, 0, 0
        while parcels and (seconds <= 0 or time.monotonic() - started < seconds):
            await asyncio.sleep(max(0.0, started + posted / rate - time.monotonic()))
            moving = [p for p in parcels if not p.done]
            if not moving:
                break
            parcel = rng.choice(moving)
            event: dict[str, object]
            if rng.random() < 0.08 and parcel.step < 3:
                event = {"status": "exception", "reason": rng.choice(REASONS)}
                held += 1
            else:
                event = {"status": JOURNEY[parcel.step]}
                parcel.step += 1
                if event["status"] == "in_transit" and parcel.promised_by and rng.random() < 0.15:
                    # the carrier now expects it after the promise: the board shows it at risk
                    event["estimated_delivery"] = (parcel.promised_by + timedelta(hours=6)).isoformat()
            city = CITIES[parcel.country][rng.randrange(3)]
            event |= {
                "occurred_at": datetime.now(UTC).isoformat(),
                "location": {"city": city, "country": parcel.country},
            }
            answer = await api.post(f"/v1/shipments/{parcel.id}/events", json=event)
            posted += 1
            if event["status"] == "delivered" and answer.status_code < 300:
                parcel.done = True
                delivered += 1
            print(
                f"\r  {posted} events · {delivered} delivered · {held} held up · {time.monotonic() - started:.0f} s ",
                end="",
                file=sys.stderr,
                flush=True,
            )
        print(file=sys.stderr)

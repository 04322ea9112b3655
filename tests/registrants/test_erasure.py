"""Erasure and restriction of a registrant: everything goes (or nothing), the law's exceptions stay, marked."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from app.auth.principal import SYSTEM
from app.db.base import Base
from app.outbox import service as outbox
from app.registrants import erasure
from tests.conftest import TEST_ERASURE_KEYS, TEST_SECRET

ROTATED = "rotated-" + "r" * 40


async def _seed_person(client, controller, booking) -> dict:
    """A person with every kind of data the registrants and consents modules hold."""
    tag = uuid.uuid4().hex[:10]
    values = {"given": f"Eeva{tag}", "family": f"Poistettava{tag}", "email": f"eeva.{tag}@example.com",
              "ref": f"bk-{tag}", "guardian": f"Gustav{tag}", "addr": "203.0.113.77", "ua": f"Browser/{tag}"}
    body = {"kind": "person", "given_name": values["given"], "family_name": values["family"],
            "email": values["email"], "phone": "+358 40 7654321", "language": "fi",
            "address": {"street": f"Katu {tag} 1", "postal_code": "00100", "city": "Helsinki"},
            "customer_types": ["season"]}
    r = await client.put(f"/v1/registrants/by-ref/booking/{values['ref']}", headers=booking.headers, json=body)
    assert r.status_code == 201, r.text
    rid = values["id"] = r.json()["id"]
    await client.patch(f"/v1/registrants/{rid}", headers=controller.headers, json={"given_name": values["given"] + "x"})
    now = datetime.now(UTC)
    for record_type, age in (("order", 1), ("invoice", 1), ("invoice", 9)):
        rec = {"type": record_type, "occurred_at": (now - timedelta(days=365 * age)).isoformat(),
               "external_id": uuid.uuid4().hex, "data": {"note": f"{record_type} for {values['family']}"}}
        made = await client.post(f"/v1/registrants/{rid}/records", headers=booking.headers, json=rec,
                                 params={}, )
        assert made.status_code == 201, made.text
    consent = {"action": "grant", "purpose": "newsletter", "channel": "email", "source": "web_form",
               "evidence": {"text": "Uutiskirje", "client_addr": values["addr"], "user_agent": values["ua"]}}
    made = await client.post(f"/v1/registrants/{rid}/consents", headers={**booking.headers, "Idempotency-Key": tag},
                             json=consent)
    assert made.status_code == 201, made.text
    return values


async def _erase(app, rid: str, **kwargs):
    kwargs.setdefault("steps", app.state.wiring.erasure_steps)
    async with app.state.db.sessionmaker() as session:
        result = await erasure.erase(session, actor=SYSTEM, registrant_id=uuid.UUID(rid), key=kwargs.pop("key", TEST_ERASURE_KEYS),
                                     request_ref="test", **kwargs)
        await session.commit()
        return result


async def _every_value(app, *, held: bool = False) -> str:
    """Every value of every table as one text to search; `held`: only the records erasure kept by law."""
    chunks = []
    async with app.state.db.sessionmaker() as session:
        for table in Base.metadata.sorted_tables:
            for row in (await session.execute(select(table))).mappings().all():
                if held != bool(row.get("legal_hold")) and (held or table.name == "relationship_record"):
                    continue
                chunks.append(" ".join(str(v) for v in row.values()))
    return "\n".join(chunks)


class TestErasure:
    async def test_no_table_holds_the_erased_values(self, app, client, controller, make_client, register_profile):
        booking = await make_client("integration", "booking")
        values = await _seed_person(client, controller, booking)
        outbox_message = None
        async with app.state.db.sessionmaker() as session:
            outbox_message = await outbox.enqueue(session, kind="email", registrant_id=uuid.UUID(values["id"]),
                                                  payload={"to": values["email"], "subject": "Hei", "text": values["family"]})
            await session.commit()
        before = await _every_value(app)
        for key in ("given", "family", "email", "ref", "addr", "ua"):
            assert values[key] in before, key  # the search would find them

        result = await _erase(app, values["id"])

        after = await _every_value(app)
        for key in ("given", "family", "email", "ref", "addr", "ua"):
            assert values[key] not in after, key
        # The one exception: the invoice the Accounting Act still needs names its customer, and is marked so.
        assert values["family"] in await _every_value(app, held=True)
        assert "+358407654321" not in after.replace(" ", "")
        kept = {k.what: k for k in result.kept}
        assert kept["relationship_record:accounting_vouchers"].count == 1  # the 1-year-old invoice; the 9-year-old went
        assert "17(3)(b)" in kept["relationship_record:accounting_vouchers"].ground
        registrant = (await client.get(f"/v1/registrants/{values['id']}", headers=controller.headers)).json()
        assert registrant["status"] == "erased"
        assert registrant["email"] is None and registrant["family_name"] is None
        assert outbox_message is not None

    async def test_the_invoice_kept_carries_its_ground(self, app, client, controller, make_client, register_profile):
        booking = await make_client("integration", "booking")
        values = await _seed_person(client, controller, booking)
        await _erase(app, values["id"])
        records = (await client.get(f"/v1/registrants/{values['id']}/records", headers=controller.headers)).json()
        assert [r["type"] for r in records["items"]] == ["invoice"]

    async def test_pushing_an_erased_reference_again_is_410(self, app, client, controller, make_client,
                                                            register_profile):
        booking = await make_client("integration", "booking")
        values = await _seed_person(client, controller, booking)
        await _erase(app, values["id"])
        again = await client.put(f"/v1/registrants/by-ref/booking/{values['ref']}", headers=booking.headers,
                                 json={"kind": "person", "given_name": "Eeva", "family_name": "Uusi"})
        assert again.status_code == 410
        assert again.headers["content-type"] == "application/problem+json"
        posted = await client.post("/v1/registrants", headers=controller.headers,
                                   json={"kind": "person", "given_name": "E", "family_name": "U",
                                         "external_refs": [{"system": "booking", "id": values["ref"]}]})
        assert posted.status_code == 410
        other_system = await client.post("/v1/registrants", headers=controller.headers,
                                         json={"kind": "person", "given_name": "E", "family_name": "U",
                                               "external_refs": [{"system": "webshop", "id": values["ref"]}]})
        assert other_system.status_code == 201

    async def test_the_hash_is_keyed_with_the_erasure_key_and_survives_its_rotation(
            self, app, client, controller, make_client, register_profile):
        # GDPR Art. 17: rotating the JWT key must not un-erase anyone; rotating the erasure key keeps the old one.
        booking = await make_client("integration", "booking")
        values = await _seed_person(client, controller, booking)
        await _erase(app, values["id"])
        async with app.state.db.sessionmaker() as session:
            stored = set((await session.execute(select(erasure.REF.c.external_id).where(
                erasure.REF.c.registrant_id == uuid.UUID(values["id"])))).scalars())
        assert stored == {erasure.erased_ref(TEST_ERASURE_KEYS, "booking", values["ref"])}
        assert erasure.erased_ref(TEST_SECRET, "booking", values["ref"]) not in stored
        body = {"kind": "person", "given_name": "Eeva", "family_name": "Uusi"}
        settings = app.state.settings  # restored after the test
        app.state.settings = settings.model_copy(update={"erasure_keys": SecretStr(f"{ROTATED},{TEST_ERASURE_KEYS}")})
        again = await client.put(f"/v1/registrants/by-ref/booking/{values['ref']}", headers=booking.headers, json=body)
        assert again.status_code == 410  # the older key is still checked
        app.state.settings = settings.model_copy(update={"erasure_keys": SecretStr(ROTATED)})
        forgotten = await client.put(f"/v1/registrants/by-ref/booking/{values['ref']}", headers=booking.headers,
                                     json=body)
        assert forgotten.status_code == 201  # why an old key must stay listed

    async def test_erasing_twice_is_409_and_unknown_is_404(self, app, client, controller, make_client, register_profile):
        from app.core.errors import Conflict, NotFound

        booking = await make_client("integration", "booking")
        values = await _seed_person(client, controller, booking)
        await _erase(app, values["id"])
        with pytest.raises(Conflict):
            await _erase(app, values["id"])
        with pytest.raises(NotFound):
            await _erase(app, str(uuid.uuid4()))

    async def test_a_failure_half_way_erases_nothing(self, app, client, controller, make_client, register_profile):
        booking = await make_client("integration", "booking")
        values = await _seed_person(client, controller, booking)

        async def broken(session, context):
            raise RuntimeError("disk full")

        # After the core step has run its deletes and updates in the transaction.
        steps = [*app.state.wiring.erasure_steps, erasure.ErasureStep("broken", (), broken)]
        with pytest.raises(RuntimeError):
            await _erase(app, values["id"], steps=steps)
        still = (await client.get(f"/v1/registrants/{values['id']}", headers=controller.headers)).json()
        assert still["status"] == "active" and still["email"] == values["email"]
        records = (await client.get(f"/v1/registrants/{values['id']}/records", headers=controller.headers)).json()
        assert len(records["items"]) == 3
        assert values["ref"] in await _every_value(app)


class TestRestriction:
    async def test_restricted_is_hidden_from_integrations_and_audiences(self, app, client, controller, make_client,
                                                                       register_profile):
        booking = await make_client("integration", "booking")
        values = await _seed_person(client, controller, booking)
        rid = values["id"]
        async with app.state.db.sessionmaker() as session:
            await erasure.restrict(session, actor=SYSTEM, registrant_id=uuid.UUID(rid), request_ref="test")
            await session.commit()
        assert (await client.get(f"/v1/registrants/{rid}", headers=booking.headers)).status_code == 404
        staff_read = await client.get(f"/v1/registrants/{rid}", headers=controller.headers)
        assert staff_read.status_code == 200 and staff_read.json()["status"] == "restricted"
        audience = await client.get("/v1/audience", headers=controller.headers,
                                    params={"purpose": "newsletter", "channel": "email", "limit": 5000})
        assert rid not in {m["registrant_id"] for m in audience.json()["items"]}
        async with app.state.db.sessionmaker() as session:
            await erasure.lift_restriction(session, actor=SYSTEM, registrant_id=uuid.UUID(rid), request_ref="test")
            await session.commit()
        assert (await client.get(f"/v1/registrants/{rid}", headers=booking.headers)).status_code == 200
        from app.core.errors import Conflict

        async with app.state.db.sessionmaker() as session:
            with pytest.raises(Conflict):
                await erasure.lift_restriction(session, actor=SYSTEM, registrant_id=uuid.UUID(rid), request_ref="t")


class TestLinkedPeople:
    async def test_erasing_a_guardian_or_contact_person_touches_only_their_data(self, app, client, controller,
                                                                               register_profile):
        tag = uuid.uuid4().hex[:8]
        email = f"huoltaja.{tag}@example.com"
        h = controller.headers
        guardian = (await client.post("/v1/registrants", headers=h, json={
            "kind": "person", "given_name": "Hilkka", "family_name": f"Huoltaja{tag}", "email": email})).json()
        child = (await client.post("/v1/registrants", headers=h, json={
            "kind": "person", "given_name": "Lapsi", "family_name": f"Laulaja{tag}", "date_of_birth": "2019-05-01",
            "guardian_ids": [guardian["id"]]})).json()
        assert child["guardians"][0]["registrant_id"] == guardian["id"]
        org = (await client.post("/v1/registrants", headers=h, json={
            "kind": "organisation", "name": f"Kuoro{tag} ry", "contact_persons": [
                {"name": f"Hilkka Huoltaja{tag}", "email": email}, {"name": "Toinen", "email": f"t.{tag}@example.com"}],
        })).json()
        await _erase(app, guardian["id"])

        child_now = (await client.get(f"/v1/registrants/{child['id']}", headers=h)).json()
        assert child_now["status"] == "active" and child_now["family_name"] == f"Laulaja{tag}"
        assert child_now["guardians"] == []
        assert "guardian" in child_now["attention"]
        flagged = await client.get("/v1/registrants", headers=h, params={"attention": "true", "name": "laulaja" + tag})
        assert [r["id"] for r in flagged.json()["items"]] == [child["id"]]
        org_now = (await client.get(f"/v1/registrants/{org['id']}", headers=h)).json()
        assert [c["name"] for c in org_now["contact_persons"]] == ["Toinen"]
        assert f"Huoltaja{tag}" not in await _every_value(app)

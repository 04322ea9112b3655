"""The /v1/registrants endpoints: create, read, list, update, upsert by reference, history, stats."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select, update

from app.audit.models import AuditEntry
from app.registrants.models import Registrant, RegistrantHistory
from tests.registrants.conftest import ext_id, organisation, person

pytestmark = pytest.mark.asyncio


async def _audit_entries(app, registrant_id: str, action: str) -> list[AuditEntry]:
    async with app.state.db.sessionmaker() as session:
        rows = await session.execute(select(AuditEntry).where(AuditEntry.action == action))
        return [e for e in rows.scalars() if registrant_id in e.registrant_ids]


async def _count(app, model, **where) -> int:
    async with app.state.db.sessionmaker() as session:
        stmt = select(func.count()).select_from(model).filter_by(**where)
        return (await session.execute(stmt)).scalar_one()


class TestCreateRegistrant:
    async def test_auth_matrix(self, client, make_user, make_client):
        assert (await client.post("/v1/registrants", json=person())).status_code == 401
        for account in (await make_user("viewer"), await make_user("auditor"), await make_client("automation")):
            r = await client.post("/v1/registrants", headers=account.headers, json=person())
            assert r.status_code == 403, r.text
        for account in (await make_user("staff"), await make_client("integration")):
            r = await client.post("/v1/registrants", headers=account.headers, json=person())
            assert r.status_code == 201, r.text

    async def test_person_is_normalised_and_versioned(self, client, make_user, app):
        staff = await make_user("staff")
        r = await client.post("/v1/registrants", headers=staff.headers, json=person(
            email="Maija.M@Example.COM", customer_types=["season", "course", "season"],
            address={"street": "Kuja 1", "postal_code": "00100", "city": "Helsinki"}))
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["phone"] == "+358405812799"
        assert body["email"] == "maija.m@example.com"
        assert body["customer_types"] == ["course", "season"]
        assert body["status"] == "active" and body["version"] == 1
        assert r.headers["etag"] == '"1"'
        assert len(await _audit_entries(app, body["id"], "registrant.create")) == 1

    async def test_organisation(self, client, make_user):
        staff = await make_user("staff")
        r = await client.post("/v1/registrants", headers=staff.headers, json=organisation())
        assert r.status_code == 201, r.text
        assert r.json()["contact_persons"][0]["name"] == "Kalle Kontakti"

    @pytest.mark.parametrize(("body", "loc"), [
        (person(status="erased"), ["body", "status"]),
        (person(version=7), ["body", "version"]),
        (person(id=str(uuid.uuid4())), ["body", "id"]),
        (person(created_at="2020-01-01T00:00:00Z"), ["body", "created_at"]),
        (person(email="not-an-email"), ["body", "email"]),
        (person(phone="12"), ["body", "phone"]),
        (person(phone="040 581 27999999"), ["body", "phone"]),
        (person(date_of_birth=(date.today() + timedelta(days=2)).isoformat()), ["body", "date_of_birth"]),
        (person(date_of_birth=(date.today() - timedelta(days=365 * 8)).isoformat()), ["body", "guardian_ids"]),
        (person(date_of_birth=(date.today() - timedelta(days=365 * 8)).isoformat(), guardian={"name": "Äiti"}),
         ["body", "guardian"]),
        (organisation(name=None), ["body", "name"]),
        (organisation(business_id="0112038-8"), ["body", "business_id"]),
        (person(family_name=None), ["body", "family_name"]),
        (person(language="de"), ["body", "language"]),
    ])
    async def test_bad_input_names_the_field_and_writes_nothing(self, client, make_user, app, body, loc):
        staff = await make_user("staff")
        before = await _count(app, Registrant)
        r = await client.post("/v1/registrants", headers=staff.headers, json=body)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert [e["loc"][:2] for e in r.json()["errors"]][0] == loc
        assert await _count(app, Registrant) == before

    async def test_minor_with_guardian(self, client, make_user):
        staff = await make_user("staff")
        born = (date.today() - timedelta(days=365 * 8)).isoformat()
        mother = await client.post("/v1/registrants", headers=staff.headers, json=person(
            given_name="Äiti", phone="0405812799"))
        r = await client.post("/v1/registrants", headers=staff.headers, json=person(
            date_of_birth=born, guardian_ids=[mother.json()["id"]]))
        assert r.status_code == 201, r.text
        assert [g["registrant_id"] for g in r.json()["guardians"]] == [mother.json()["id"]]

    async def test_duplicate_reference_conflicts_and_writes_nothing(self, client, make_user, app):
        staff = await make_user("staff")
        ref = {"system": "booking", "id": ext_id()}
        first = await client.post("/v1/registrants", headers=staff.headers, json=person(external_refs=[ref]))
        assert first.status_code == 201, first.text
        before = await _count(app, Registrant)
        r = await client.post("/v1/registrants", headers=staff.headers, json=person(external_refs=[ref]))
        assert r.status_code == 409, r.text
        assert r.json()["errors"][0]["loc"] == ["body", "external_refs", 0]
        assert await _count(app, Registrant) == before

    async def test_integration_cannot_reference_another_system(self, client, make_client, app):
        booking = await make_client("integration", "booking")
        before = await _count(app, Registrant)
        r = await client.post("/v1/registrants", headers=booking.headers,
                              json=person(external_refs=[{"system": "webshop", "id": ext_id()}]))
        assert r.status_code == 403, r.text
        assert r.json()["errors"][0]["loc"] == ["body", "external_refs", 0, "system"]
        assert await _count(app, Registrant) == before


class TestGetRegistrant:
    async def test_auth_matrix(self, client, make_user, make_client, create):
        staff = await make_user("staff")
        created = await create(staff)
        url = f"/v1/registrants/{created['id']}"
        assert (await client.get(url)).status_code == 401
        for account in (await make_user("viewer"), await make_client("automation")):
            assert (await client.get(url, headers=account.headers)).status_code == 403
        for account in (staff, await make_user("auditor"), await make_user("controller")):
            assert (await client.get(url, headers=account.headers)).status_code == 200

    async def test_read_is_audited_with_etag(self, client, make_user, create, app):
        staff = await make_user("staff")
        created = await create(staff)
        r = await client.get(f"/v1/registrants/{created['id']}", headers=staff.headers)
        assert r.status_code == 200 and r.headers["etag"] == '"1"'
        assert len(await _audit_entries(app, created["id"], "registrant.read")) == 1

    async def test_integration_sees_only_its_own(self, client, make_client, make_user, create):
        booking = await make_client("integration", "booking")
        webshop = await make_client("integration", "webshop")
        staff = await make_user("staff")
        own = await create(booking)
        referenced = await create(staff, person(external_refs=[{"system": "booking", "id": ext_id()}]))
        other = await create(webshop)
        unknown = await create(staff)
        for item in (own, referenced):
            assert (await client.get(f"/v1/registrants/{item['id']}", headers=booking.headers)).status_code == 200
        for item in (other, unknown):
            r = await client.get(f"/v1/registrants/{item['id']}", headers=booking.headers)
            assert r.status_code == 404, r.text
        guessed = await client.get(f"/v1/registrants/{uuid.uuid4()}", headers=booking.headers)
        assert guessed.status_code == 404
        assert guessed.json()["detail"] == r.json()["detail"]  # existence is not revealed


class TestListRegistrants:
    async def test_auth_matrix(self, client, make_user, make_client):
        assert (await client.get("/v1/registrants")).status_code == 401
        for account in (await make_user("viewer"), await make_client("automation")):
            assert (await client.get("/v1/registrants", headers=account.headers)).status_code == 403
        assert (await client.get("/v1/registrants", headers=(await make_user("auditor")).headers)).status_code == 200

    async def test_filters(self, client, make_user, create):
        staff = await make_user("staff")
        tag = ext_id()
        digits = str(int(tag, 16))[-7:].rjust(7, "0")  # a phone number no other test uses
        a = await create(staff, person(email=f"a-{tag}@example.com", phone=f"+358 40 {digits}",
                                       family_name=f"Zq{tag}", customer_types=["season"],
                                       external_refs=[{"system": "booking", "id": tag}]))
        b = await create(staff, organisation(name=f"Zq{tag} Oy", contact_persons=[]))

        async def ids(**params) -> list[str]:
            r = await client.get("/v1/registrants", headers=staff.headers, params=params)
            assert r.status_code == 200, r.text
            return [item["id"] for item in r.json()["items"]]

        assert await ids(email=f"A-{tag}@EXAMPLE.com") == [a["id"]]
        assert await ids(phone=f"040 {digits}") == [a["id"]]
        assert await ids(ref=f"booking:{tag}") == [a["id"]]
        assert await ids(name=f"zq{tag}") == [a["id"], b["id"]]
        assert await ids(name=f"zq{tag}", kind="organisation") == [b["id"]]
        assert await ids(name=f"zq{tag}", customer_type="season") == [a["id"]]
        assert await ids(name=f"zq{tag}", created_from=b["created_at"]) == [b["id"]]
        assert await ids(name=f"zq{tag}", updated_to=b["updated_at"]) == [a["id"]]
        assert await ids(name=f"zq{tag}", status="erased") == []
        assert await ids(name="%") == []  # wildcards are literal

    async def test_pagination_and_one_audit_entry_per_page(self, client, make_user, create, app):
        staff = await make_user("staff")
        email = f"family-{ext_id()}@example.com"
        made = [await create(staff, person(email=email)) for _ in range(3)]
        r = await client.get("/v1/registrants", headers=staff.headers, params={"email": email, "limit": 2})
        page1 = r.json()
        assert len(page1["items"]) == 2 and page1["next_cursor"]
        r = await client.get("/v1/registrants", headers=staff.headers,
                             params={"email": email, "limit": 2, "cursor": page1["next_cursor"]})
        page2 = r.json()
        assert page2["next_cursor"] is None
        assert [i["id"] for i in page1["items"] + page2["items"]] == [m["id"] for m in made]
        entries = await _audit_entries(app, made[0]["id"], "registrant.list")
        assert len(entries) == 1 and sorted(entries[0].registrant_ids) == sorted(i["id"] for i in page1["items"])

    async def test_bad_filters(self, client, make_user):
        staff = await make_user("staff")
        for params, loc in (({"phone": "abc"}, ["query", "phone"]), ({"ref": "nocolon"}, ["query", "ref"]),
                            ({"cursor": "!!"}, ["query", "cursor"]), ({"cursor": "WyJ4Il0"}, ["query", "cursor"]),
                            ({"cursor": "WzEsMiwzXQ"}, ["query", "cursor"]), ({"kind": "robot"}, ["query", "kind"])):
            r = await client.get("/v1/registrants", headers=staff.headers, params=params)
            assert r.status_code == 422, r.text
            assert r.json()["errors"][0]["loc"][:2] == loc

    async def test_integration_lists_only_its_own(self, client, make_client, make_user, create):
        booking = await make_client("integration", "booking")
        webshop = await make_client("integration", "webshop")
        email = f"shared-{ext_id()}@example.com"
        own = await create(booking, person(email=email))
        await create(webshop, person(email=email))
        await create(await make_user("staff"), person(email=email))
        r = await client.get("/v1/registrants", headers=booking.headers, params={"email": email})
        assert [i["id"] for i in r.json()["items"]] == [own["id"]]
        r = await client.get("/v1/registrants", headers=booking.headers, params={"status": "restricted"})
        assert r.status_code == 403


class TestUpdateRegistrant:
    async def test_auth_matrix(self, client, make_user, make_client, create):
        created = await create(await make_user("staff"))
        url = f"/v1/registrants/{created['id']}"
        assert (await client.patch(url, json={"given_name": "X"})).status_code == 401
        for account in (await make_user("viewer"), await make_user("auditor"), await make_client("automation")):
            assert (await client.patch(url, headers=account.headers, json={"given_name": "X"})).status_code == 403

    async def test_update_writes_history(self, client, make_user, create, app):
        staff = await make_user("staff")
        created = await create(staff)
        r = await client.patch(f"/v1/registrants/{created['id']}", headers={**staff.headers, "If-Match": '"1"'},
                               json={"phone": "+358 50 123 4567", "customer_types": ["course"], "language": "sv"})
        assert r.status_code == 200, r.text
        assert r.json()["version"] == 2 and r.headers["etag"] == '"2"'
        assert r.json()["phone"] == "+358501234567"
        h = await client.get(f"/v1/registrants/{created['id']}/history", headers=staff.headers)
        assert h.status_code == 200
        items = h.json()["items"]
        assert [i["action"] for i in items] == ["create", "update"]
        change = items[1]
        assert change["fields"] == ["customer_types", "language", "phone"]
        assert change["changes"]["phone"] == {"old": "+358405812799", "new": "+358501234567"}
        assert change["actor_id"] == staff.id
        assert len(await _audit_entries(app, created["id"], "registrant.update")) == 1

    async def test_stale_if_match_is_412_and_changes_nothing(self, client, make_user, create):
        staff = await make_user("staff")
        created = await create(staff)
        url = f"/v1/registrants/{created['id']}"
        assert (await client.patch(url, headers=staff.headers, json={"given_name": "Liisa"})).status_code == 200
        r = await client.patch(url, headers={**staff.headers, "If-Match": '"1"'}, json={"given_name": "Anna"})
        assert r.status_code == 412, r.text
        assert (await client.get(url, headers=staff.headers)).json()["given_name"] == "Liisa"

    @pytest.mark.parametrize(("body", "status", "loc"), [
        ({"status": "erased"}, 422, ["body", "status"]),
        ({"version": 9}, 422, ["body", "version"]),
        ({"kind": "organisation"}, 422, ["body", "kind"]),
        ({"email": "nope"}, 422, ["body", "email"]),
        ({"family_name": None}, 422, ["body", "family_name"]),
        ({"language": None}, 422, ["body", "language"]),
        ({"date_of_birth": (date.today() - timedelta(days=365 * 5)).isoformat()}, 422, ["body", "guardian_ids"]),
    ])
    async def test_bad_updates(self, client, make_user, create, body, status, loc):
        staff = await make_user("staff")
        created = await create(staff)
        url = f"/v1/registrants/{created['id']}"
        r = await client.patch(url, headers=staff.headers, json=body)
        assert r.status_code == status, r.text
        assert r.json()["errors"][0]["loc"][:2] == loc
        assert (await client.get(url, headers=staff.headers)).json()["version"] == 1

    async def test_integration_cannot_update_another_systems(self, client, make_client, create, app):
        booking = await make_client("integration", "booking")
        other = await create(await make_client("integration", "webshop"))
        r = await client.patch(f"/v1/registrants/{other['id']}", headers=booking.headers, json={"given_name": "X"})
        assert r.status_code == 404
        assert await _count(app, RegistrantHistory, registrant_id=uuid.UUID(other["id"])) == 1


class TestUpsertByRef:
    async def test_auth_matrix(self, client, make_user):
        url = f"/v1/registrants/by-ref/booking/{ext_id()}"
        body = person()
        body.pop("email")
        assert (await client.put(url, json=body)).status_code == 401
        assert (await client.put(url, headers=(await make_user("auditor")).headers, json=body)).status_code == 403

    async def test_creates_then_replaces(self, client, make_client):
        booking = await make_client("integration", "booking")
        url = f"/v1/registrants/by-ref/booking/{ext_id()}"
        r = await client.put(url, headers=booking.headers, json=person(given_name="Eka"))
        assert r.status_code == 201, r.text
        first = r.json()
        r = await client.put(url, headers={**booking.headers, "If-Match": '"1"'}, json=person(given_name="Toka"))
        assert r.status_code == 200, r.text
        assert r.json()["id"] == first["id"] and r.json()["given_name"] == "Toka" and r.json()["version"] == 2
        r = await client.put(url, headers={**booking.headers, "If-Match": '"1"'}, json=person(given_name="Kolmas"))
        assert r.status_code == 412

    async def test_create_change_and_repeat_write_history_and_audit(self, client, make_client, app):
        booking = await make_client("integration", "booking")
        ref = ext_id()
        url = f"/v1/registrants/by-ref/booking/{ref}"
        body = person(customer_types=["season", "course", "season"], address={
            "street": "Mannerheimintie 1", "postal_code": "00100", "city": "Helsinki"})
        made = await client.put(url, headers=booking.headers, json=body)
        assert made.status_code == 201 and made.headers["etag"] == '"1"', made.text
        first = made.json()
        assert first["external_refs"] == [{"system": "booking", "id": ref}]
        assert first["customer_types"] == ["course", "season"] and first["version"] == 1
        assert first["address"]["country"] == "FI" and first["phone"] == "+358405812799"
        rid = first["id"]
        read = await client.get(f"/v1/registrants/{rid}", headers=booking.headers)
        assert read.json() == first
        changed = await client.put(url, headers=booking.headers,
                                   json={**body, "given_name": "Toka", "customer_types": ["web_shop", "course"]})
        assert changed.status_code == 200 and changed.headers["etag"] == '"2"', changed.text
        second = changed.json()
        assert second["given_name"] == "Toka" and second["version"] == 2
        assert second["customer_types"] == ["course", "web_shop"]
        assert second["created_at"] == first["created_at"] and second["updated_at"] >= first["updated_at"]
        assert (await client.get(f"/v1/registrants/{rid}", headers=booking.headers)).json() == second
        again = await client.put(url, headers=booking.headers,
                                 json={**body, "given_name": "Toka", "customer_types": ["course", "web_shop"]})
        assert again.status_code == 200 and again.headers["etag"] == '"2"' and again.json() == second
        history = (await client.get(f"/v1/registrants/{rid}/history", headers=booking.headers)).json()["items"]
        assert [(h["version"], h["action"]) for h in history] == [(1, "create"), (2, "update")]
        assert history[0]["changes"]["customer_types"] == {"old": None, "new": ["course", "season"]}
        assert history[1]["changes"] == {"given_name": {"old": "Maija", "new": "Toka"},
                                         "customer_types": {"old": ["course", "season"], "new": ["course", "web_shop"]}}
        assert history[1]["fields"] == ["customer_types", "given_name"]
        [created] = await _audit_entries(app, rid, "registrant.create")
        updates = sorted(await _audit_entries(app, rid, "registrant.update"), key=lambda e: e.seq)
        assert created.registrant_ids == [rid] and created.resource_id == rid and created.details == {}
        assert created.actor_type == "client" and created.role == "integration" and created.outcome == "success"
        assert [e.details for e in updates] == [{"fields": ["customer_types", "given_name"]}, {"fields": []}]
        assert created.seq < updates[0].seq < updates[1].seq

    async def test_kind_status_and_stale_version(self, client, make_client, make_user, app):
        booking, staff = await make_client("integration", "booking"), await make_user("staff")
        url = f"/v1/registrants/by-ref/booking/{ext_id()}"
        rid = (await client.put(url, headers=booking.headers, json=person())).json()["id"]
        r = await client.put(url, headers=booking.headers, json=organisation())
        assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "kind"]
        assert (await client.put(url, headers=booking.headers, json=person(given_name="B"))).status_code == 200
        r = await client.put(url, headers={**booking.headers, "If-Match": '"1"'}, json=person(given_name="C"))
        assert r.status_code == 412 and r.headers["etag"] == '"2"'
        r = await client.put(url, headers={**booking.headers, "If-Match": "nonsense"}, json=person(given_name="C"))
        assert r.status_code == 412
        await TestRestrictedAndErased._restricted(None, app, rid)
        assert (await client.put(url, headers=booking.headers, json=person())).status_code == 404
        assert (await client.put(url, headers=staff.headers, json=person())).status_code == 409
        assert await _count(app, RegistrantHistory, registrant_id=uuid.UUID(rid)) == 2

    async def test_another_systems_ref_is_403(self, client, make_client):
        booking = await make_client("integration", "booking")
        r = await client.put(f"/v1/registrants/by-ref/webshop/{ext_id()}", headers=booking.headers, json=person())
        assert r.status_code == 403
        assert r.json()["errors"][0]["loc"] == ["path", "system"]


class TestHistory:
    async def test_auth_and_isolation(self, client, make_user, make_client, create):
        created = await create(await make_user("staff"))
        url = f"/v1/registrants/{created['id']}/history"
        assert (await client.get(url)).status_code == 401
        assert (await client.get(url, headers=(await make_user("viewer")).headers)).status_code == 403
        assert (await client.get(url, headers=(await make_client("integration")).headers)).status_code == 404
        assert (await client.get(url, headers=(await make_user("auditor")).headers)).status_code == 200


class TestStats:
    async def test_auth_matrix_and_counts(self, client, make_user, make_client, create):
        await create(await make_user("staff"), person(customer_types=["web_shop"]))
        assert (await client.get("/v1/stats/registrants")).status_code == 401
        assert (await client.get("/v1/stats/registrants",
                                 headers=(await make_client("integration")).headers)).status_code == 403
        r = await client.get("/v1/stats/registrants", headers=(await make_user("viewer")).headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["total"] >= 1 and body["by_kind"]["person"] >= 1 and body["by_customer_type"]["web_shop"] >= 1
        assert "items" not in body


class TestRestrictedAndErased:
    async def _restricted(self, app, registrant_id: str) -> None:
        # Only later issues change the status; here the database stands in for them.
        async with app.state.db.sessionmaker() as session:
            await session.execute(update(Registrant).where(Registrant.id == uuid.UUID(registrant_id))
                                  .values(status="restricted"))
            await session.commit()

    async def test_hidden_from_lists_and_integrations(self, client, make_user, make_client, create, app):
        booking = await make_client("integration", "booking")
        staff = await make_user("staff")
        email = f"restricted-{ext_id()}@example.com"
        created = await create(booking, person(email=email))
        await self._restricted(app, created["id"])
        r = await client.get("/v1/registrants", headers=staff.headers, params={"email": email})
        assert r.json()["items"] == []
        r = await client.get("/v1/registrants", headers=staff.headers, params={"email": email, "status": "restricted"})
        assert [i["status"] for i in r.json()["items"]] == ["restricted"]
        url = f"/v1/registrants/{created['id']}"
        assert (await client.get(url, headers=booking.headers)).status_code == 404
        assert (await client.get(url, headers=staff.headers)).status_code == 200
        r = await client.patch(url, headers=staff.headers, json={"given_name": "X"})
        assert r.status_code == 409, r.text
        r = await client.post(url + "/records", headers=staff.headers,
                              json={"type": "order", "occurred_at": "2026-01-01T00:00:00Z"})
        assert r.status_code == 409, r.text

    async def test_integration_cannot_guess_by_reference(self, client, make_client, create):
        webshop = await make_client("integration", "webshop")
        booking = await make_client("integration", "booking")
        ref = ext_id()
        await create(webshop, person(external_refs=[{"system": "webshop", "id": ref}]))
        r = await client.get("/v1/registrants", headers=booking.headers, params={"ref": f"webshop:{ref}"})
        assert r.status_code == 200 and r.json()["items"] == []

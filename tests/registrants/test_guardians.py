"""Guardian links: a child and each guardian are registrants of their own (361/1983; GDPR Art. 8)."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest

from tests.registrants.conftest import person

pytestmark = pytest.mark.asyncio


def _years_ago(years: int, days: int = 0) -> str:
    today = date.today()
    return (today.replace(year=today.year - years, day=min(today.day, 28)) - timedelta(days=days)).isoformat()


@pytest.fixture
def family(client, make_user):
    """A staff account, a guardian (40) and a second guardian; `child(**fields)` makes a ten-year-old of the first."""

    async def make():
        staff = await make_user("staff")
        mother = (await client.post("/v1/registrants", headers=staff.headers, json=person(
            given_name="Hanna", date_of_birth=_years_ago(40)))).json()
        father = (await client.post("/v1/registrants", headers=staff.headers, json=person(given_name="Kalle"))).json()

        async def child(**fields):
            body = {"given_name": "Ella", "email": None, "phone": None, "date_of_birth": _years_ago(10),
                    "guardian_ids": [mother["id"]], **fields}
            r = await client.post("/v1/registrants", headers=staff.headers, json=person(**body))
            assert r.status_code == 201, r.text
            return r.json()

        return staff, mother, father, child

    return make


class TestLinks:
    async def test_auth_matrix(self, client, make_user, make_client, family):
        staff, mother, father, child = await family()
        kid = await child()
        url = f"/v1/registrants/{kid['id']}/guardians"
        assert (await client.post(url, json={"guardian_id": father["id"]})).status_code == 401
        for account in (await make_user("viewer"), await make_user("auditor"), await make_client("automation")):
            r = await client.post(url, headers=account.headers, json={"guardian_id": father["id"]})
            assert r.status_code == 403, r.text
            r = await client.delete(f"{url}/{mother['id']}", headers=account.headers)
            assert r.status_code == 403, r.text

    async def test_both_sides_show_the_link(self, client, family):
        staff, mother, father, child = await family()
        kid = await child()
        assert [g["registrant_id"] for g in kid["guardians"]] == [mother["id"]]
        r = await client.post(f"/v1/registrants/{kid['id']}/guardians", headers=staff.headers,
                              json={"guardian_id": father["id"]})
        assert r.status_code == 200, r.text
        assert [g["registrant_id"] for g in r.json()["guardians"]] == [mother["id"], father["id"]]
        assert r.json()["version"] == 2 and r.headers["ETag"] == '"2"'
        link = r.json()["guardians"][1]
        assert link["source"] == "api" and (link["linked_at"].endswith("Z") or link["linked_at"].endswith("+00:00"))
        dad = (await client.get(f"/v1/registrants/{father['id']}", headers=staff.headers)).json()
        assert [c["registrant_id"] for c in dad["children"]] == [kid["id"]]
        history = (await client.get(f"/v1/registrants/{kid['id']}/history", headers=staff.headers)).json()["items"]
        assert history[-1]["fields"] == ["guardians"]
        # Linking again changes nothing.
        again = await client.post(f"/v1/registrants/{kid['id']}/guardians", headers=staff.headers,
                                  json={"guardian_id": father["id"]})
        assert again.json()["version"] == 2

    async def test_siblings_with_the_parents_email_stay_two_people(self, client, family):
        staff, mother, father, child = await family()
        ella = await child(email=mother["email"])
        eero = await child(given_name="Eero", email=mother["email"], date_of_birth=_years_ago(7))
        assert ella["id"] != eero["id"]
        mum = (await client.get(f"/v1/registrants/{mother['id']}", headers=staff.headers)).json()
        assert {c["registrant_id"] for c in mum["children"]} == {ella["id"], eero["id"]}

    async def test_unlinking_keeps_one_guardian_under_the_guardian_age(self, client, family):
        staff, mother, father, child = await family()
        kid = await child()
        url = f"/v1/registrants/{kid['id']}/guardians"
        r = await client.delete(f"{url}/{mother['id']}", headers=staff.headers)
        assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["path", "guardian_id"]
        await client.post(url, headers=staff.headers, json={"guardian_id": father["id"]})
        r = await client.delete(f"{url}/{mother['id']}", headers=staff.headers)
        assert r.status_code == 200, r.text
        assert [g["registrant_id"] for g in r.json()["guardians"]] == [father["id"]]
        assert (await client.delete(f"{url}/{mother['id']}", headers=staff.headers)).status_code == 404

    async def test_upsert_by_reference_adds_the_guardians_it_names(self, client, family):
        staff, mother, father, child = await family()
        body = person(given_name="Eero", email=None, phone=None, date_of_birth=_years_ago(7),
                      guardian_ids=[mother["id"]])
        url = f"/v1/registrants/by-ref/booking/{uuid.uuid4().hex}"
        assert (await client.put(url, headers=staff.headers, json=body)).status_code == 201
        r = await client.put(url, headers=staff.headers, json={**body, "guardian_ids": [father["id"]]})
        assert r.status_code == 200, r.text
        assert {g["registrant_id"] for g in r.json()["guardians"]} == {mother["id"], father["id"]}


class TestBadInput:
    async def test_a_guardian_younger_than_18(self, client, family):
        staff, mother, father, child = await family()
        teen = (await client.post("/v1/registrants", headers=staff.headers, json=person(
            given_name="Teini", date_of_birth=_years_ago(17)))).json()
        r = await client.post("/v1/registrants", headers=staff.headers, json=person(
            date_of_birth=_years_ago(5), guardian_ids=[teen["id"]]))
        assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "guardian_ids", 0]
        kid = await child()
        r = await client.post(f"/v1/registrants/{kid['id']}/guardians", headers=staff.headers,
                              json={"guardian_id": teen["id"]})
        assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "guardian_id"]
        # A guardian cannot become younger than 18 either.
        r = await client.patch(f"/v1/registrants/{mother['id']}", headers=staff.headers,
                               json={"date_of_birth": _years_ago(16)})
        assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "date_of_birth"]

    async def test_a_child_without_a_guardian_under_the_guardian_age(self, client, family):
        staff, mother, father, child = await family()
        r = await client.post("/v1/registrants", headers=staff.headers, json=person(date_of_birth=_years_ago(12)))
        assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "guardian_ids"]
        assert "guardian" in r.json()["errors"][0]["msg"]
        # From the guardian age on a minor may be registered alone.
        r = await client.post("/v1/registrants", headers=staff.headers, json=person(date_of_birth=_years_ago(13, 1)))
        assert r.status_code == 201, r.text

    async def test_a_guardian_of_themselves_or_in_a_loop(self, client, family):
        staff, mother, father, child = await family()
        kid = await child()
        r = await client.post(f"/v1/registrants/{kid['id']}/guardians", headers=staff.headers,
                              json={"guardian_id": kid["id"]})
        assert r.status_code == 422 and "own guardian" in r.json()["errors"][0]["msg"]
        # The mother as her own child's ward: refused (a person of 18 or more has no guardian; no loops).
        r = await client.post(f"/v1/registrants/{mother['id']}/guardians", headers=staff.headers,
                              json={"guardian_id": kid["id"]})
        assert r.status_code == 422, r.text
        r = await client.post(f"/v1/registrants/{kid['id']}/guardians", headers=staff.headers,
                              json={"guardian_id": str(uuid.uuid4())})
        assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "guardian_id"]

    @pytest.mark.parametrize("born", ["future", "ancient"])
    async def test_a_date_of_birth_in_the_future_or_over_120_years_ago(self, client, make_user, born):
        staff = await make_user("staff")
        today = date.today()
        value = (today + timedelta(days=1)) if born == "future" else today.replace(year=today.year - 121)
        r = await client.post("/v1/registrants", headers=staff.headers, json=person(date_of_birth=value.isoformat()))
        assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "date_of_birth"]

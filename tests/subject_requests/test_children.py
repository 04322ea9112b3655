"""Requests for a child: a guardian with a proved link files for a child under 18, the child from 15 files their
own, the package names the guardian who received it (361/1983 § 4; GDPR Art. 8, 12, 15); turning of age."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from app.registrants import guardians
from tests.subject_requests.conftest import filing


def born(years: int, days: int = 0) -> str:
    """The date of birth of someone `years` old today, `days` before their next birthday (0: born today)."""
    today = date.today()
    return (today.replace(year=today.year - years, day=min(today.day, 28)) + timedelta(days=days)).isoformat()


def custody(guardian: str) -> dict:
    return {"name": "Pirjo Esimerkki", "basis": "custody", "registrant_id": guardian,
            "evidence": "huoltajuus väestötietojärjestelmästä"}


class TestGuardianFiles:
    async def test_a_guardian_files_access_for_a_child_and_the_package_names_them(
            self, client, me, registrant, advance):
        pirjo = await registrant(given_name="Pirjo", family_name="Esimerkki")
        ella = await registrant(given_name="Ella", family_name="Esimerkki", email=None, date_of_birth=born(9),
                                guardian_ids=[pirjo])
        r = await client.post("/v1/requests", headers=me.headers, json=filing(
            registrant_id=ella, on_behalf="guardian", authority=custody(pirjo)))
        assert r.status_code == 201, r.text
        request_id = r.json()["id"]
        verify = await client.post(f"/v1/requests/{request_id}/transitions", headers=me.headers,
                                   json={"action": "verify", "method": "guardian"})
        assert verify.status_code == 200, verify.text
        for action in ("start", "complete"):
            step = await client.post(f"/v1/requests/{request_id}/transitions", headers=me.headers,
                                     json={"action": action})
            assert step.status_code == 200, step.text
        package = (await client.get(f"/v1/requests/{request_id}/export", headers=me.headers)).json()
        assert package["received_by"] == {"on_behalf": "guardian", "name": "Pirjo Esimerkki", "basis": "custody",
                                          "registrant_id": pirjo}
        assert [g["registrant_id"] for g in package["registrant"]["guardians"]] == [pirjo]
        page = (await client.get(f"/v1/requests/{request_id}/export", headers=me.headers,
                                 params={"format": "html", "lang": "fi"})).text
        assert "Pirjo Esimerkki" in page and "Vastaanottaja" in page

    async def test_without_a_proved_link_or_for_an_adult_it_is_422(self, client, me, registrant):
        pirjo, stranger = await registrant(given_name="Pirjo"), await registrant(given_name="Vieras")
        ella = await registrant(given_name="Ella", date_of_birth=born(9), guardian_ids=[pirjo])
        r = await client.post("/v1/requests", headers=me.headers, json=filing(
            registrant_id=ella, on_behalf="guardian", authority=custody(stranger)))
        assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "authority", "registrant_id"]
        unnamed = {k: v for k, v in custody(pirjo).items() if k != "registrant_id"}
        r = await client.post("/v1/requests", headers=me.headers, json=filing(
            registrant_id=ella, on_behalf="guardian", authority=unnamed))
        assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "authority", "registrant_id"]
        adult = await registrant(given_name="Aikuinen", date_of_birth=born(18))
        r = await client.post("/v1/requests", headers=me.headers, json=filing(
            registrant_id=adult, on_behalf="guardian", authority=custody(pirjo)))
        assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "on_behalf"]
        r = await client.post("/v1/requests", headers=me.headers, json=filing(
            "portability", registrant_id=ella, on_behalf="guardian", authority=custody(pirjo)))
        assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "type"]

    async def test_the_link_is_checked_when_the_child_is_linked_later(self, client, me, registrant):
        pirjo, stranger = await registrant(given_name="Pirjo"), await registrant(given_name="Vieras")
        ella = await registrant(given_name="Ella", date_of_birth=born(9), guardian_ids=[pirjo])
        r = await client.post("/v1/requests", headers=me.headers, json=filing(
            on_behalf="guardian", authority=custody(stranger)))
        assert r.status_code == 201, r.text
        link = await client.post(f"/v1/requests/{r.json()['id']}/transitions", headers=me.headers, json={
            "action": "verify", "method": "guardian", "registrant_id": ella})
        assert link.status_code == 422, link.text
        assert link.json()["errors"][0]["loc"] == ["body", "authority", "registrant_id"]


class TestChildFilesOwn:
    async def test_from_15_a_child_files_their_own(self, client, me, registrant):
        pirjo = await registrant(given_name="Pirjo")
        young = await registrant(given_name="Eero", date_of_birth=born(14, 1), guardian_ids=[pirjo])
        r = await client.post("/v1/requests", headers=me.headers, json=filing(registrant_id=young))
        assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "on_behalf"]
        teen = await registrant(given_name="Ella", date_of_birth=born(15), guardian_ids=[pirjo])
        r = await client.post("/v1/requests", headers=me.headers, json=filing(registrant_id=teen))
        assert r.status_code == 201, r.text
        # And her guardian still may, until she is 18.
        r = await client.post("/v1/requests", headers=me.headers, json=filing(
            registrant_id=teen, on_behalf="guardian", authority=custody(pirjo)))
        assert r.status_code == 201, r.text


class TestOfAge:
    async def test_children_who_reach_the_guardian_age_are_flagged_once(self, app, client, me, registrant, clock):
        today = clock.utcnow().date()
        await me.travel(datetime.combine(today, time(23, 57), UTC))
        pirjo = await registrant(given_name="Pirjo")
        tomorrow = today + timedelta(days=1)
        ella = await registrant(given_name="Ella", email=None,
                                date_of_birth=tomorrow.replace(year=tomorrow.year - 13).isoformat(),
                                guardian_ids=[pirjo])
        grant = {"action": "grant", "purpose": "newsletter", "channel": "email", "source": "web_form",
                 "evidence": {"given_by": "guardian", "guardian_id": pirjo}}
        r = await client.post(f"/v1/registrants/{ella}/consents", headers=me.headers, json=grant)
        assert r.status_code == 201, r.text
        async with app.state.db.sessionmaker() as session:
            assert await guardians.flag_of_age(session) == 0
            await session.commit()
        clock.advance(timedelta(minutes=4))  # her 13th birthday
        async with app.state.db.sessionmaker() as session:
            flagged = await guardians.flag_of_age(session)
            again = await guardians.flag_of_age(session)
            await session.commit()
        assert (flagged, again) == (1, 0)
        got = (await client.get(f"/v1/registrants/{ella}", headers=me.headers)).json()
        assert got["attention"] == guardians.OF_AGE_ATTENTION

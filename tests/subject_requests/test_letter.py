"""The letter (GDPR Art. 12(1)) in Finnish, English and Swedish, and the package 2.1 against its schema."""

from __future__ import annotations

import html
import re
import uuid
from datetime import date, timedelta

import pytest

from tests.subject_requests.conftest import person as person_body
from tests.subject_requests.test_export import check

# What a person should never have to read: snake_case codes, ISO durations and timestamps, microseconds,
# JSON, Python's words for nothing.
RAW = [re.compile(p) for p in (r"\b[a-z]+_[a-z0-9_]+\b", r"\bP\d+[YMWD]\b", r"\d{4}-\d\d-\d\dT\d", r"\d:\d\d:\d\d",
                               r"[{}\"]", r"\b(None|True|False|null)\b", r"\b(grant|in_progress|completed)\b",
                               r"\((contract|consent|legal_obligation)\)")]


def visible(page: str) -> str:
    """The text a reader sees: no tags, entities decoded."""
    body = page.split("<body>", 1)[-1]
    return html.unescape(re.sub(r"<[^>]+>", " ", body))


def raw_codes(page: str) -> list[str]:
    """Every piece of raw code or machine format the letter shows."""
    text = visible(page)
    return [m.group(0) for pattern in RAW for m in pattern.finditer(text)]


def you_section(page: str) -> str:
    """The text of the "your data" part of the letter."""
    return visible(page.split('<section id="you">', 1)[1].split("</section>", 1)[0])


async def letter(client, me, request_id: str, lang: str) -> str:
    r = await client.get(f"/v1/requests/{request_id}/export", headers=me.headers,
                         params={"format": "html", "lang": lang})
    assert r.status_code == 200, r.text
    assert f'<html lang="{lang}">' in r.text
    return r.text


@pytest.fixture
def answered(client, me, file, advance):
    """A completed request of a type about a registrant; the request id."""

    async def make(person: str, type_: str = "access", **fields) -> str:
        made = await file(type_, registrant_id=person, **fields)
        await advance(made["id"], person)
        return made["id"]

    return make


@pytest.fixture
def rich(client, me, registrant, make_client):
    """A person with records, consents, a booking integration that read them, and a changed name."""

    async def make() -> str:
        person = await registrant(address={"street": "Laulajankatu 1 A 2", "postal_code": "00100", "city": "Helsinki"},
                                  customer_types=["course", "web_shop"],
                                  external_refs=[{"system": "booking", "id": uuid.uuid4().hex}])
        base = f"/v1/registrants/{person}"
        for kind, category in (("order", None), ("invoice", "accounting_vouchers"), ("lesson", None)):
            r = await client.post(f"{base}/records", headers=me.headers, json={
                "type": kind, "occurred_at": "2026-05-01T10:00:00.123456Z", "source": "booking",
                "data": {"what": "laulutunti", "minutes": 45}, **({"data_category": category} if category else {})})
            assert r.status_code == 201, r.text
        for event in ({"action": "grant", "purpose": "newsletter", "channel": "email"},
                      {"action": "object", "purpose": "market_research"}):
            r = await client.post(f"{base}/consents", headers=me.headers,
                                  json={**event, "source": "web_form", "evidence": {"text": "Kyllä"}})
            assert r.status_code == 201, r.text
        current = await client.get(base, headers=me.headers)
        r = await client.patch(base, headers={**me.headers, "If-Match": current.headers["ETag"]},
                               json={"family_name": "Virtanen"})
        assert r.status_code == 200, r.text
        booking = await make_client("integration", "booking")
        assert (await client.get(base, headers=booking.headers)).status_code == 200
        return person

    return make


class TestLetter:
    @pytest.mark.parametrize("lang", ["fi", "en", "sv"])
    async def test_no_raw_code_iso_duration_or_machine_time_in_any_language(self, client, me, rich, answered, lang):
        request_id = await answered(await rich())
        page = await letter(client, me, request_id, lang)
        assert raw_codes(page) == []

    async def test_the_finnish_letter_in_words(self, client, me, rich, answered, controller):
        person = await rich()
        page = visible(await letter(client, me, await answered(person), "fi"))
        assert "Vastaus tarkastuspyyntöösi" in page and "Pyyntösi vastaanotettiin" in page
        for words in ("Etunimi", "Sukunimi", "Virtanen", "Laulajankatu 1 A 2, 00100 Helsinki", "suomi",
                      "suostumus annettu", "käsittely kielletty", "tilaus", "lasku", "1.5.2026 klo 13.00",
                      "6 vuotta", "tietosuojavaltuutetun", "sopimus tai asiakassuhde"):
            assert words in page, words
        # C-579/21: who consulted the data and when; staff by name and role, integrations by system.
        assert "Kuka on käsitellyt tietojasi" in page and "järjestelmä booking" in page
        assert "Test Controller (rekisterinpitäjä)" in page and "luki tietoja" in page
        assert "Tietojesi muutoshistoria" in page and "tietoja muutettiin" in page and "Sukunimi" in page

    async def test_named_recipients_not_only_categories(self, client, me, rich, answered, policy):
        from tests.conftest import combined_profile
        page = visible(await letter(client, me, await answered(await rich()), "en"))
        for recipient in combined_profile()["recipients"]:
            assert recipient["name"] in page  # CJEU C-154/21
        assert "Systems your data has been disclosed to" in page and "the system booking" in page
        assert "kept 6 years" in page

    async def test_a_person_sees_no_business_id_and_an_organisation_no_date_of_birth(self, client, me, answered,
                                                                                     registrant):
        private = await registrant(date_of_birth="1990-04-01")
        page = await letter(client, me, await answered(private), "fi")
        you = you_section(page)
        assert "Y-tunnus" not in you and "Syntymäaika" in you and "1.4.1990" in you
        r = await client.post("/v1/registrants", headers=me.headers, json={
            "kind": "organisation", "name": "Kuoro ry", "business_id": "0112038-9", "language": "sv",
            "contact_persons": [{"name": "Kalle Kontakti", "email": "kalle@example.com"}]})
        assert r.status_code == 201, r.text
        org = r.json()["id"]
        page = await letter(client, me, await answered(org, on_behalf="contact_person",
                                                       authority={"name": "Kalle Kontakti",
                                                                  "basis": "organisation_role"}), "sv")
        you = you_section(page)
        assert "FO-nummer" in you and "0112038-9" in you and "Kalle Kontakti" in you
        assert "Födelsedatum" not in you and "Förnamn" not in you and raw_codes(page) == []

    async def test_a_child_with_a_guardian(self, client, me, answered, registrant):
        born = (date.today() - timedelta(days=365 * 9)).isoformat()
        parent = await registrant(given_name="Matti")
        child = await registrant(given_name="Ella", date_of_birth=born, guardian_ids=[parent])
        request_id = await answered(child, on_behalf="guardian",
                                    authority={"name": "Matti Meikäläinen", "basis": "custody",
                                               "registrant_id": parent})
        for lang, label in (("fi", "Huoltaja"), ("en", "Guardian"), ("sv", "Vårdnadshavare")):
            page = await letter(client, me, request_id, lang)
            you = you_section(page)
            assert label in you and "Matti Meikäläinen" in you and "Ella" in you
            assert raw_codes(page) == []


class TestPackage:
    async def test_the_access_package_validates_against_its_versioned_schema(self, client, me, rich, answered):
        person = await rich()
        package = (await client.get(f"/v1/requests/{await answered(person)}/export", headers=me.headers)).json()
        check(package)
        assert package["_meta"]["format_version"] == "2.1"
        kinds = {(e["kind"], e["system"]) for e in package["consultation_log"]}
        assert ("read", "booking") in kinds
        assert any("family_name" in h["fields"] for h in package["change_history"])
        assert package["information"]["disclosed_to"] == ["booking"]
        vouchers = next(c for c in package["information"]["data_categories"] if c["code"] == "accounting_vouchers")
        assert vouchers["retention_words"] == {  # the period and its start, as the accounting rule counts them
            "fi": "6 vuotta sen vuoden lopusta, jonka aikana tilikausi päättyi",
            "en": "6 years from the end of the year in which the financial period ended",
            "sv": "6 år från utgången av det år då räkenskapsperioden gick ut"}
        assert vouchers["start_event"] == "financial_year_end"

    async def test_portability_leaves_out_derived_and_legally_kept_data_and_says_why(self, client, me, rich,
                                                                                    answered):
        person = await rich()
        request_id = await answered(person, "portability")
        package = (await client.get(f"/v1/requests/{request_id}/export", headers=me.headers)).json()
        check(package)
        assert "information" not in package and "consultation_log" not in package
        assert sorted(r["type"] for r in package["data"]["relationship_records"]) == ["lesson", "order"]
        left = {(x.get("section") or x.get("category"), x["reason"]) for x in package["left_out"]}
        assert {("consent_state", "derived"), ("requests", "derived"),
                ("accounting_vouchers", "legal_obligation")} <= left
        page = visible(await letter(client, me, request_id, "fi"))
        assert "Mitä tästä aineistosta jätettiin pois ja miksi" in page
        assert "lakisääteisen velvoitteen perusteella" in page and raw_codes(page) == []


class TestArt19InTheLetter:
    async def test_recipients_told_of_a_restriction_are_listed_when_the_person_asked(
            self, client, me, registrant, answered, allow_local_callbacks):
        system = f"crm{uuid.uuid4().hex[:6]}"
        made = await client.post("/v1/clients", headers=me.headers, json={
            "name": "Asiakashallinta", "role": "integration", "system": system,
            "callback_url": "http://127.0.0.1:9/events"})
        assert made.status_code == 201, made.text
        person = await registrant(external_refs=[{"system": system, "id": uuid.uuid4().hex}])
        restriction = await answered(person, "restriction", recipients_requested=True)
        detail = (await client.get(f"/v1/requests/{restriction}", headers=me.headers)).json()
        assert detail["outcome"]["recipients_disclosed"] == [f"Asiakashallinta ({system})"]
        page = visible(await letter(client, me, await answered(person), "fi"))
        assert "Vastaanottajat, joille ilmoitettiin" in page and "Asiakashallinta" in page
        assert "rajoituspyyntö" in page

"""GET /v1/requests/{id}/export: auth, the package against its schema, the HTML letter, the portability zip."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import uuid
import zipfile

import jsonschema
import orjson
import pytest

from app.subject_requests.package import SCHEMA_PATH

SCHEMA = json.loads(SCHEMA_PATH.read_text())


def check(package: dict) -> None:
    """The package validates against the committed schema and its digest matches its content."""
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.validate(package, SCHEMA, cls=jsonschema.Draft202012Validator)
    content = {k: v for k, v in package.items() if k != "_meta"}
    digest = hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()
    assert digest == package["_meta"]["sha256"]


@pytest.fixture
def completed(file, registrant, advance):
    """A completed request of a type about a (new, unless given) registrant; its id and the registrant's."""

    async def make(type_: str = "access", account=None, person: str | None = None, **person_fields) -> tuple[str, str]:
        person = person or await registrant(**person_fields)
        made = await file(type_, account=account, registrant_id=person)
        await advance(made["id"], person)
        return made["id"], person

    return make


class TestAuth:
    async def test_anonymous_401(self, client, completed):
        request_id, _ = await completed()
        assert (await client.get(f"/v1/requests/{request_id}/export")).status_code == 401

    async def test_roles_without_exports_read_403(self, client, accounts, completed):
        request_id, _ = await completed()
        for role in ("viewer", "integration"):
            r = await client.get(f"/v1/requests/{request_id}/export", headers=accounts[role].headers)
            assert r.status_code == 403, role

    async def test_staff_controller_auditor_and_the_filing_client_download(self, client, accounts, make_client,
                                                                            completed):
        request_id, _ = await completed(account=accounts["automation"])
        for role in ("controller", "staff", "auditor", "automation"):
            r = await client.get(f"/v1/requests/{request_id}/export", headers=accounts[role].headers)
            assert r.status_code == 200, role
        stranger = await make_client("automation", "dsr-other")
        assert (await client.get(f"/v1/requests/{request_id}/export", headers=stranger.headers)).status_code == 404

    async def test_downloads_are_audited(self, client, controller, completed):
        request_id, person = await completed()
        await client.get(f"/v1/requests/{request_id}/export", headers=controller.headers, params={"format": "html"})
        log = await client.get("/v1/audit", headers=controller.headers,
                               params={"registrant": person, "action": "request.export.download"})
        assert log.json()["items"][0]["details"]["format"] == "html"


class TestPackage:
    async def test_every_kind_of_data_appears(self, app, client, me, registrant, file, act, completed):
        person = await registrant(address={"street": "Laulajankatu 1 A 2", "postal_code": "00100", "city": "Helsinki"},
                                  customer_types=["course", "web_shop"], language="en",
                                  external_refs=[{"system": "booking", "id": uuid.uuid4().hex}])
        base = f"/v1/registrants/{person}"
        for kind, category in (("order", None), ("invoice", "accounting_vouchers"), ("lesson", None),
                               ("survey_answer", None)):
            r = await client.post(f"{base}/records", headers=me.headers, json={
                "type": kind, "occurred_at": "2026-05-01T10:00:00Z", "source": "booking",
                "external_id": uuid.uuid4().hex, "data": {"what": kind, "note": "<b>bold</b>"},
                **({"data_category": category} if category else {})})
            assert r.status_code == 201, r.text
        for event in ({"action": "grant", "purpose": "newsletter", "channel": "email"},
                      {"action": "object", "purpose": "market_research"}):
            r = await client.post(f"{base}/consents", headers=me.headers,
                                  json={**event, "source": "web_form", "evidence": {"text": "Kyllä"}})
            assert r.status_code == 201, r.text
        email = (await client.get(base, headers=me.headers)).json()["email"]
        tag = uuid.uuid4().hex[:8]
        joined = await client.post("/v1/waitlist", headers=me.headers, json={
            "given_name": "Maija", "family_name": "Meikäläinen", "age": 30, "email": email, "channels": ["email"],
            "interests": ["cancellations"], "tags": [f"t{tag}"]})
        assert joined.status_code == 201 and joined.json()["registrant_id"] == person, joined.text
        slot = {"starts_at": "2030-01-01T10:00:00+02:00", "description": "Laulutunti"}
        noticed = await client.post("/v1/waitlist/notifications", headers=me.headers, json={
            "interest": "cancellations", "message": "Vapaa aika", "slot": slot, "tags": [f"t{tag}"]})
        assert noticed.status_code == 201, noticed.text
        earlier = await file("rectification", registrant_id=person)
        await act(earlier["id"], "withdraw")
        request_id, _ = await completed(person=person)
        r = await client.get(f"/v1/requests/{request_id}/export", headers=me.headers)
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        package = r.json()
        check(package)
        assert r.headers["X-Content-SHA256"] == package["_meta"]["sha256"]
        assert package["_meta"]["request_id"] == request_id and package["_meta"]["request_type"] == "access"
        reg = package["registrant"]
        assert reg["id"] == person and reg["address"]["city"] == "Helsinki"
        assert reg["customer_types"] == ["course", "web_shop"] and reg["external_refs"][0]["system"] == "booking"
        data = package["data"]
        assert set(data) == {s.name for s in app.state.wiring.package_sections}  # a new section (e.g. the waitlist's) must be filled here too
        kinds = sorted(x["type"] for x in data["relationship_records"])
        assert kinds == ["invoice", "lesson", "order", "survey_answer"]
        assert {(e["action"], e["purpose"]) for e in data["consent_events"]} == {
            ("grant", "newsletter"), ("object", "market_research"), ("grant", "waitlist")}  # joining is consent
        assert {s["state"] for s in data["consent_state"]} >= {"granted", "objected"}
        assert earlier["id"] in {x["id"] for x in data["requests"]}
        assert [e["email"] for e in data["waitlist_entries"]] == [email]
        assert [(n["channel"], n["slot_description"]) for n in data["waitlist_notices"]] == [("email", "Laulutunti")]
        info = package["information"]
        assert {"newsletter", "market_research"} <= {p["code"] for p in info["purposes"]}
        assert info["retention"]["accounting_vouchers"] == "P6Y"
        transfers = [x for x in info["recipients"] if x["third_country"]]
        assert transfers and all(x["safeguard"] for x in transfers)
        assert set(info["rights"]) >= {"rectification", "erasure", "restriction", "objection", "complaint"}
        assert info["automated_decision_making"]["used"] is False and info["sources"]
        assert info["controller"]["business_id"]

    async def test_a_registrant_with_no_data_validates_too(self, client, controller, completed):
        request_id, _ = await completed()
        package = (await client.get(f"/v1/requests/{request_id}/export", headers=controller.headers)).json()
        check(package)
        assert package["data"]["relationship_records"] == []

    async def test_csv_cells_that_would_start_a_formula_are_neutralised(self, client, me, registrant, completed):
        person = await registrant(given_name="=HYPERLINK(\"https://evil.example\")", family_name="@SUM(A1)")
        await client.post(f"/v1/registrants/{person}/records", headers=me.headers, json={
            "type": "order", "occurred_at": "2026-05-01T10:00:00Z", "external_id": "-2+3+cmd|' /C calc'!A0",
            "data": {"total": -12.5}})
        request_id, _ = await completed("portability", person=person)
        r = await client.get(f"/v1/requests/{request_id}/export", headers=me.headers, params={"format": "zip"})
        archive = zipfile.ZipFile(io.BytesIO(r.content))
        cells = [cell for name in archive.namelist() if name.endswith(".csv")
                 for row in csv.reader(io.StringIO(archive.read(name).decode())) for cell in row]
        assert "'=HYPERLINK(\"https://evil.example\")" in cells and "'@SUM(A1)" in cells
        assert "'-2+3+cmd|' /C calc'!A0" in cells
        # Only plain numbers (an E.164 phone, a negative amount) may start with + or -: they evaluate to themselves.
        assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")
                    and not re.fullmatch(r"[+-][0-9]+(\.[0-9]+)?", c)]
        # The JSON in the same archive keeps the values exactly as given.
        assert json.loads(archive.read("package.json"))["registrant"]["given_name"].startswith("=HYPERLINK")

    async def test_frozen_at_completion(self, client, me, completed):
        request_id, person = await completed()
        first = await client.get(f"/v1/requests/{request_id}/export", headers=me.headers)
        r = await client.post(f"/v1/registrants/{person}/records", headers=me.headers,
                              json={"type": "order", "occurred_at": "2026-06-01T10:00:00Z", "data": {"n": 1}})
        assert r.status_code == 201
        again = await client.get(f"/v1/requests/{request_id}/export", headers=me.headers)
        assert again.content == first.content

    async def test_portability_is_what_the_person_provided_with_csv_per_table(self, client, me, registrant, completed):
        person = await registrant()
        await client.post(f"/v1/registrants/{person}/records", headers=me.headers, json={
            "type": "order", "occurred_at": "2026-05-01T10:00:00Z", "data": {"item": "laulutunti, 45 min"}})
        request_id, _ = await completed("portability", person=person)
        package = (await client.get(f"/v1/requests/{request_id}/export", headers=me.headers)).json()
        check(package)
        assert "information" not in package and set(package["data"]) == {"relationship_records", "consent_events",
                                                                   "waitlist_entries"}
        r = await client.get(f"/v1/requests/{request_id}/export", headers=me.headers, params={"format": "zip"})
        assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
        archive = zipfile.ZipFile(io.BytesIO(r.content))
        assert set(archive.namelist()) == {"package.json", "registrant.csv", "relationship_records.csv",
                                           "consent_events.csv", "waitlist_entries.csv"}
        assert "laulutunti, 45 min" in archive.read("relationship_records.csv").decode()
        assert json.loads(archive.read("package.json")) == package

    async def test_no_package_before_completion_or_for_other_types(self, client, controller, file, registrant,
                                                                   advance):
        person = await registrant()
        pending = await file(registrant_id=person)
        r = await client.get(f"/v1/requests/{pending['id']}/export", headers=controller.headers)
        assert r.status_code == 409 and "completed" in r.json()["detail"]
        erasure = await file("erasure", registrant_id=person)
        await advance(erasure["id"], person)
        r = await client.get(f"/v1/requests/{erasure['id']}/export", headers=controller.headers)
        assert r.status_code == 409 and "no package" in r.json()["detail"]
        bad = await client.get(f"/v1/requests/{pending['id']}/export", headers=controller.headers,
                               params={"format": "pdf"})
        assert bad.status_code == 422


class TestLetter:
    async def test_finnish_by_default_and_english_on_request(self, client, me, completed):
        request_id, person = await completed()
        await client.post(f"/v1/registrants/{person}/records", headers=me.headers, json={
            "type": "feedback", "occurred_at": "2026-05-01T10:00:00Z", "data": {"text": "<script>alert(1)</script>"}})
        fi = await client.get(f"/v1/requests/{request_id}/export", headers=me.headers, params={"format": "html"})
        assert fi.status_code == 200 and fi.headers["content-type"].startswith("text/html")
        assert '<html lang="fi">' in fi.text and "Vastaus tarkastuspyyntöösi" in fi.text
        assert "Meikäläinen" in fi.text and "Tietosuojapyynnöt" in fi.text and "tietosuojavaltuutetun" in fi.text
        en = await client.get(f"/v1/requests/{request_id}/export", headers=me.headers,
                              params={"format": "html", "lang": "en"})
        assert '<html lang="en">' in en.text and "Answer to your access request" in en.text
        assert "Your rights" in en.text and "automated decision-making" in en.text

    async def test_the_persons_language_and_escaping(self, client, me, registrant, completed):
        person = await registrant(language="en", given_name="<img src=x onerror=alert(1)>")
        await client.post(f"/v1/registrants/{person}/records", headers=me.headers, json={
            "type": "feedback", "occurred_at": "2026-05-01T10:00:00Z", "data": {"text": "<script>alert(1)</script>"}})
        request_id, _ = await completed(person=person)
        r = await client.get(f"/v1/requests/{request_id}/export", headers=me.headers, params={"format": "html"})
        assert '<html lang="en">' in r.text
        assert "<script>alert" not in r.text and "&lt;script&gt;" in r.text
        assert "<img src=x" not in r.text


class TestAfterErasure:
    """GDPR Art. 17: the person's earlier frozen packages (and the letters rendered from them) go with them."""

    async def test_an_earlier_access_package_is_gone_and_names_nobody(self, client, me, completed, file, advance):
        access, person = await completed("access")
        email = (await client.get(f"/v1/registrants/{person}", headers=me.headers)).json()["email"]
        before = await client.get(f"/v1/requests/{access}/export", headers=me.headers)
        assert before.status_code == 200 and email in before.text
        erasure = await file("erasure", registrant_id=person)
        await advance(erasure["id"], person)

        for fmt in ("json", "html", "zip"):
            after = await client.get(f"/v1/requests/{access}/export", headers=me.headers, params={"format": fmt})
            assert after.status_code == 410, after.text
            assert email not in after.text
        request = await client.get(f"/v1/requests/{access}", headers=me.headers)
        assert request.status_code == 200 and email not in request.text
        # The erasure request itself keeps what it needs until its own retention period ends.
        assert (await client.get(f"/v1/requests/{erasure['id']}", headers=me.headers)).json()["status"] == "completed"

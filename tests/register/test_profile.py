import pytest
from sqlalchemy import select

from app.core.errors import Invalid

from app.audit.models import AuditEntry
from app.register import service as register_service
from tests.register.conftest import example, latest_number, put_profile


def _errors(response) -> str:
    """The problem document's field errors as one string (for asserting the field is named)."""
    body = response.json()
    return " ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in body.get("errors") or [])


class TestGetRegister:
    async def test_anonymous_401(self, client):
        r = await client.get("/v1/register")
        assert r.status_code == 401
        assert r.headers["content-type"] == "application/problem+json"

    async def test_every_role_reads(self, client, current, make_user, make_client):
        await current()
        for account in (await make_user("viewer"), await make_user("staff"), await make_client("integration"),
                        await make_client("automation")):
            r = await client.get("/v1/register", headers=account.headers)
            assert r.status_code == 200, r.text

    async def test_returns_newest_version(self, client, controller, current):
        written = await current("selfluencer")
        r = await client.get("/v1/register", headers=controller.headers)
        body = r.json()
        assert body["number"] == written["number"]
        assert body["profile"]["controller"]["business_id"] == "3286283-6"
        assert body["created_by"] == controller.id


class TestPutRegister:
    async def test_anonymous_401(self, client):
        assert (await put_profile(client, {}, example())).status_code == 401

    async def test_staff_403(self, client, make_user):
        for role in ("staff", "auditor", "viewer"):
            account = await make_user(role)
            assert (await put_profile(client, account.headers, example())).status_code == 403

    async def test_controller_writes_new_version(self, client, controller):
        before = await latest_number(client, controller.headers)
        r = await put_profile(client, controller.headers, example())
        assert r.status_code == 200, r.text
        assert r.json()["number"] == before + 1
        assert r.json()["profile"]["rights_policy"]["guardian_age"] == 13

    async def test_write_is_audited(self, client, controller, app):
        number = (await put_profile(client, controller.headers, example())).json()["number"]
        async with app.state.db.sessionmaker() as session:
            entry = (await session.execute(select(AuditEntry).where(
                AuditEntry.action == "register.update", AuditEntry.resource_id == str(number)))).scalar_one()
        assert entry.actor_id == controller.id

    async def test_guardian_age_defaults_to_13(self, client, controller, app):
        document = example()
        del document["rights_policy"]["guardian_age"]
        assert (await put_profile(client, controller.headers, document)).status_code == 200
        async with app.state.db.sessionmaker() as session:
            assert await register_service.guardian_age(session) == 13

    async def test_guardian_age_from_profile(self, client, controller, app):
        document = example()
        document["rights_policy"].update(guardian_age=15, law_country="FR")  # GDPR Art. 8(1): 13-16 elsewhere
        assert (await put_profile(client, controller.headers, document)).status_code == 200
        async with app.state.db.sessionmaker() as session:
            assert await register_service.guardian_age(session) == 15
            assert (await register_service.current_profile(session)).rights_policy.guardian_age == 15


class TestPutRegisterValidation:
    async def _refused(self, client, controller, document, *fields: str) -> str:
        before = await latest_number(client, controller.headers)
        r = await put_profile(client, controller.headers, document)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == "application/problem+json"
        errors = _errors(r)
        for field in fields:
            assert field in errors, errors
        # Validated as a whole before anything is written: no new version.
        assert await latest_number(client, controller.headers) == before
        return errors

    async def test_malformed_business_id(self, client, controller):
        document = example()
        document["controller"]["business_id"] = "3286283-5"
        errors = await self._refused(client, controller, document, "body.controller.business_id")
        assert "check digit" in errors

    @pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data", "https://[2002:7f00:1::]/",
                                     "https://10.0.0.7/hook", "http://example.com/hook"])
    async def test_recipient_callback_url_passes_the_ssrf_guard(self, client, controller, url):
        document = example()
        document["recipients"][0]["callback_url"] = url
        errors = await self._refused(client, controller, document, "body.recipients.0.callback_url")
        assert "callback URL refused" in errors

    async def test_duration_overflowing_the_calendar(self, client, controller):
        document = example()
        document["data_categories"][0]["retention"] = "P99999999999Y"
        await self._refused(client, controller, document, "body.data_categories.0.retention")

    async def test_duration_not_iso_8601(self, client, controller):
        document = example()
        document["data_categories"][0]["retention"] = "six years"
        errors = await self._refused(client, controller, document, "body.data_categories.0.retention")
        assert "ISO 8601" in errors

    async def test_retention_shorter_than_the_law_requires(self, client, controller):
        document = example()
        vouchers = next(c for c in document["data_categories"] if c["code"] == "accounting_vouchers")
        vouchers["retention"] = "P1Y"
        await self._refused(client, controller, document, "minimum_retention")

    async def test_third_country_without_safeguard(self, client, controller):
        document = example()
        document["recipients"][0]["location"] = "US"
        errors = await self._refused(client, controller, document, "body.recipients.0.safeguard")
        assert "outside the EU/EEA" in errors

    async def test_privacy_shield_refused_with_reason(self, client, controller):
        document = example()
        document["recipients"][0].update(location="US", safeguard="privacy_shield")
        errors = await self._refused(client, controller, document, "body.recipients.0.safeguard")
        assert "C-311/18" in errors

    @pytest.mark.parametrize(("field", "value", "article"), [
        ("response_time", "P3M", "Art. 12(3)"), ("response_time", "P30D", "Art. 12(3)"),
        ("extension", "P6M", "Art. 12(3)"), ("extension", "P2M1D", "Art. 12(3)")])
    async def test_deadlines_beyond_the_law(self, client, controller, field, value, article):
        document = example()
        document["rights_policy"][field] = value
        errors = await self._refused(client, controller, document, f"body.rights_policy.{field}")
        assert article in errors

    @pytest.mark.parametrize(("country", "age", "article"), [
        ("FI", 10, "Tietosuojalaki 1050/2018 5 §"), ("FI", 16, "Tietosuojalaki 1050/2018 5 §"),
        ("DE", 12, "Art. 8(1)"), ("DE", 17, "Art. 8(1)")])
    async def test_guardian_age_beyond_the_law(self, client, controller, country, age, article):
        document = example()
        document["rights_policy"].update(guardian_age=age, law_country=country)
        errors = await self._refused(client, controller, document, "body.rights_policy.guardian_age")
        assert article in errors

    async def test_limits_the_law_allows_are_accepted(self, client, controller):
        document = example()
        document["rights_policy"].update(response_time="P4W", extension="P2M", guardian_age=16, law_country="DE")
        assert (await put_profile(client, controller.headers, document)).status_code == 200

    async def test_negative_free_interval(self, client, controller):
        document = example()
        document["rights_policy"]["free_access_interval_months"] = -1
        await self._refused(client, controller, document, "body.rights_policy.free_access_interval_months")

    async def test_duplicate_purpose_codes(self, client, controller):
        document = example()
        document["purposes"].append(dict(document["purposes"][0]))
        errors = await self._refused(client, controller, document, "body.purposes")
        assert "duplicate purpose code 'customer_service'" in errors

    async def test_purpose_naming_unknown_category(self, client, controller):
        document = example()
        document["purposes"][0]["data_categories"] = ["no_such_category"]
        await self._refused(client, controller, document, "no_such_category")

    async def test_unknown_fields(self, client, controller):
        document = example()
        document["controller"]["shoe_size"] = 42
        await self._refused(client, controller, document, "body.controller.shoe_size")

    async def test_bad_channel(self, client, controller):
        document = example()
        document["purposes"][0]["channels"] = ["carrier_pigeon"]
        await self._refused(client, controller, document, "body.purposes.0.channels.0")


class TestRetireNotDelete:
    async def test_purpose_in_use_cannot_be_deleted_only_retired(self, client, controller, app):
        async def waitlist_in_use(session, codes):
            return codes & {"waitlist"}

        app.state.wiring.purpose_usage_checks.append(waitlist_in_use)
        try:
            assert (await put_profile(client, controller.headers, example())).status_code == 200
            before = await latest_number(client, controller.headers)
            deleted = example()
            deleted["purposes"] = [p for p in deleted["purposes"] if p["code"] != "waitlist"]
            r = await put_profile(client, controller.headers, deleted)
            assert r.status_code == 409, r.text
            assert "'waitlist'" in r.json()["detail"] and "retired" in r.json()["detail"]
            assert await latest_number(client, controller.headers) == before

            retired = example()
            next(p for p in retired["purposes"] if p["code"] == "waitlist")["retired"] = True
            r = await put_profile(client, controller.headers, retired)
            assert r.status_code == 200, r.text
            kept = next(p for p in r.json()["profile"]["purposes"] if p["code"] == "waitlist")
            assert kept["retired"] is True
            async with app.state.db.sessionmaker() as session:
                with pytest.raises(Invalid, match="retired"):
                    await register_service.active_purpose(session, code="waitlist", loc=["body", "purpose"])
        finally:
            app.state.wiring.purpose_usage_checks.remove(waitlist_in_use)

    async def test_unused_purpose_may_be_deleted(self, client, controller):
        assert (await put_profile(client, controller.headers, example())).status_code == 200
        document = example()
        document["purposes"] = [p for p in document["purposes"] if p["code"] != "misuse_prevention"]
        assert (await put_profile(client, controller.headers, document)).status_code == 200

    async def test_unknown_purpose_code_refused_for_new_grants(self, client, controller, app):
        assert (await put_profile(client, controller.headers, example())).status_code == 200
        async with app.state.db.sessionmaker() as session:
            with pytest.raises(Invalid, match="unknown purpose code 'astrology'") as refused:
                await register_service.active_purpose(session, code="astrology", loc=["body", "purpose"])
            assert refused.value.errors[0]["loc"] == ["body", "purpose"]
            purpose = await register_service.active_purpose(session, code="waitlist", loc=["body", "purpose"])
        assert purpose.channels == ["email", "sms"]


class TestListVersions:
    async def test_anonymous_401(self, client):
        assert (await client.get("/v1/register/versions")).status_code == 401

    async def test_viewer_reads(self, client, current, make_user):
        await current()
        viewer = await make_user("viewer")
        assert (await client.get("/v1/register/versions", headers=viewer.headers)).status_code == 200

    async def test_newest_first_and_paginated(self, client, controller, current):
        first = (await current("uniikkiaani"))["number"]
        second = (await current("selfluencer"))["number"]
        page = (await client.get("/v1/register/versions", headers=controller.headers, params={"limit": 1})).json()
        assert [v["number"] for v in page["items"]] == [second]
        assert "profile" not in page["items"][0]
        following = (await client.get("/v1/register/versions", headers=controller.headers,
                                      params={"limit": 1, "cursor": page["next_cursor"]})).json()
        assert [v["number"] for v in following["items"]] == [first]


class TestGetVersion:
    async def test_anonymous_401(self, client):
        assert (await client.get("/v1/register/versions/1")).status_code == 401

    async def test_old_versions_stay_readable(self, client, controller, current, make_user):
        old = await current("uniikkiaani")
        await current("selfluencer")
        viewer = await make_user("viewer")
        r = await client.get(f"/v1/register/versions/{old['number']}", headers=viewer.headers)
        assert r.status_code == 200
        assert r.json()["profile"]["controller"]["name"] == "UniikkiÄäni Oy"
        assert r.json()["created_at"] == old["created_at"]

    async def test_missing_404(self, client, controller):
        r = await client.get("/v1/register/versions/999999", headers=controller.headers)
        assert r.status_code == 404
        assert r.headers["content-type"] == "application/problem+json"

    async def test_number_below_one_422(self, client, controller):
        r = await client.get("/v1/register/versions/0", headers=controller.headers)
        assert r.status_code == 422
        assert _errors(r).startswith("path.number")

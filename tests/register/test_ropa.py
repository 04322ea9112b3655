class TestGetRopa:
    async def test_anonymous_401(self, client):
        assert (await client.get("/v1/register/ropa")).status_code == 401

    async def test_staff_403(self, client, make_user, make_client):
        for account in (await make_user("staff"), await make_user("viewer"), await make_client("integration")):
            assert (await client.get("/v1/register/ropa", headers=account.headers)).status_code == 403

    async def test_auditor_and_controller_read(self, client, controller, current, make_user):
        await current()
        auditor = await make_user("auditor")
        for account in (auditor, controller):
            assert (await client.get("/v1/register/ropa", headers=account.headers)).status_code == 200

    async def test_article_30_items(self, client, controller, current):
        written = await current("selfluencer")
        body = (await client.get("/v1/register/ropa", headers=controller.headers)).json()
        assert body["version"] == written["number"]
        assert body["a_controller"]["business_id"] == "3286283-6"
        assert "direct_marketing" in [p["code"] for p in body["b_purposes"]]
        assert body["c_data_subjects"] and body["c_data_categories"]
        assert {r["name"] for r in body["e_third_country_transfers"]} == {
            "Wix.com Ltd", "Maksu-, IT- ja infrastruktuuripalveluiden alihankkijat Yhdysvalloissa"}
        assert all(r["safeguard"] for r in body["e_third_country_transfers"])
        assert body["f_erasure_time_limits"]["accounting_vouchers"] == (
            "6 years from the end of the year in which the financial period ended")
        assert body["g_security_measures"]
        audit_log = next(c for c in body["c_data_categories"] if c["code"] == "audit_log")
        assert audit_log["tables"] == ["audit_entry", "audit_pending", "audit_subject"]

    async def test_marketing_channels_and_how_to_stop(self, client, controller, current):
        await current("selfluencer")
        purposes = {p["code"]: p for p in (await client.get("/v1/register/ropa", headers=controller.headers)).json()[
            "b_purposes"]}
        assert purposes["direct_marketing"]["marketing_channels"] == {
            "consent_required": ["email", "sms"], "soft_opt_in": ["email", "sms"], "unless_refused": ["phone", "post"],
            "organisations_unless_refused": ["email", "sms", "phone", "post"]}
        assert purposes["direct_marketing"]["how_to_stop"] == "objection"
        assert purposes["newsletter"]["how_to_stop"] == "withdrawal"  # consent-based: withdrawn, not objected to
        assert purposes["newsletter"]["marketing_channels"]["soft_opt_in"] == []
        assert purposes["courses"]["marketing_channels"] is None

import pytest

from tests.register.conftest import example


class TestGetStatement:
    async def test_public_without_token(self, client, current):
        await current()
        r = await client.get("/v1/register/statement")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/html")
        assert '<html lang="fi">' in r.text

    async def test_listed_as_public_in_openapi(self, client):
        spec = (await client.get("/openapi.json")).json()
        assert spec["paths"]["/v1/register/statement"]["get"]["security"] == []

    @pytest.mark.parametrize("name, facts", [
        ("uniikkiaani", ["UniikkiÄäni Oy", "2686898-3", "Lehmustie 4", "11910 Riihimäki", "040 581 2799",
                         "info@uniikkiaani.fi"]),
        ("selfluencer", ["Selfluencer Oy", "AI Akatemia", "3286283-6", "info@ai-akatemia.com"]),
    ])
    @pytest.mark.parametrize("lang", ["fi", "en"])
    @pytest.mark.parametrize("fmt", ["html", "md"])
    async def test_example_profiles_render(self, client, current, name, facts, lang, fmt):
        version = await current(name)
        r = await client.get("/v1/register/statement", params={"lang": lang, "format": fmt})
        assert r.status_code == 200
        for fact in facts:
            assert fact in r.text
        assert "2016/679" in r.text and "1050/2018" in r.text
        assert "523/1999" not in r.text
        assert f"({'versio' if lang == 'fi' else 'version'} {version['number']})" in r.text

    async def test_finnish_sections(self, client, current):
        await current("uniikkiaani")
        body = (await client.get("/v1/register/statement", params={"format": "json"})).json()
        assert body["lang"] == "fi"
        headings = [s["heading"] for s in body["sections"]]
        for heading in ("Rekisterinpitäjä", "Rekisterin nimi", "Säännönmukaiset tietolähteet",
                        "Tietojen siirto EU:n tai ETA:n ulkopuolelle", "Rekisterin suojauksen periaatteet",
                        "Tietojen säilytysaika", "Rekisteröidyn oikeudet", "Evästeet"):
            assert heading in headings
        rights = " ".join(next(s for s in body["sections"] if s["key"] == "rights")["paragraphs"])
        for right in ("Tarkastusoikeus", "oikaisemiseen", "poistamiseen", "rajoittamiseen", "siirtää",
                      "vastustaa", "tietosuojavaltuutetun"):
            assert right in rights
        assert "Alle 13-vuotiaan" in rights
        assert "Ensimmäinen jäljennös tiedoista on aina maksuton" in rights and "lisäjäljennöksistä" in rights
        assert "Pyynnön toistaminen ei yksin ole syy periä maksua" in rights and "allekirjoitusta ei vaadita" in rights
        assert any("UniikkiLista" in item for item in next(s for s in body["sections"] if s["key"] == "purposes")["items"])

    async def test_selfluencer_transfers_and_objections(self, client, current):
        await current("selfluencer")
        body = (await client.get("/v1/register/statement", params={"format": "json", "lang": "en"})).json()
        sections = {s["key"]: s for s in body["sections"]}
        transfers = " ".join(sections["transfers"]["items"])
        assert "Wix.com Ltd" in transfers and "standard contractual clauses" in transfers
        assert "C-311/18" in transfers
        # Changed by issue 14: the fee sentence no longer offers a free copy "once every 6 months" (CJEU C-307/22).
        rights = " ".join(sections["rights"]["paragraphs"])
        assert "first copy of your data is always free of charge" in rights and "further copies" in rights
        assert "manifestly unfounded or excessive" in rights and "not in itself a reason for a fee" in rights
        assert "once every" not in rights and "must be signed" not in rights
        assert "Direct advertising, distance selling and other direct marketing" in sections["rights"]["items"]
        assert "Market and opinion research" in sections["rights"]["items"]
        retention = " ".join(sections["retention"]["items"])
        assert "Accounting vouchers: 6 years" in retention

    async def test_profile_values_escaped_in_html(self, client, current):
        document = example()
        document["register_name"]["fi"] = "<script>alert('x')</script> & co"
        await current(document=document)
        html = (await client.get("/v1/register/statement")).text
        assert "<script>" not in html
        assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co" in html
        markdown = (await client.get("/v1/register/statement", params={"format": "md"})).text
        assert "<script>" not in markdown and r"\<script\>" in markdown

    async def test_unknown_language_422(self, client, current):
        await current()
        r = await client.get("/v1/register/statement", params={"lang": "sv"})
        assert r.status_code == 422
        assert r.json()["errors"][0]["loc"] == ["query", "lang"]


class TestDirectMarketingText:
    @pytest.mark.parametrize(("lang", "soft", "withdraw"), [
        ("fi", "200 § 2 momentti", "Suostumuksen voi peruuttaa"), ("en", "section 200(2)", "You may withdraw")])
    async def test_selfluencer_says_what_each_channel_rests_on(self, client, current, lang, soft, withdraw):
        await current("selfluencer")
        body = (await client.get("/v1/register/statement", params={"format": "json", "lang": lang})).json()
        sections = {s["key"]: s for s in body["sections"]}
        items = sections["purposes"]["items"]
        marketing = next(i for i in items if "917/2014" in i and soft in i)
        assert "201" in marketing and "21" in marketing  # organisations opt-out; the absolute refusal
        newsletter = next(i for i in items if i.startswith(("Uutiskirje", "Newsletter")))
        assert withdraw in newsletter and "kieltää milloin tahansa." not in newsletter
        assert "object to this processing" not in newsletter
        assert not any(i.startswith(("Uutiskirje", "Newsletter")) for i in sections["rights"]["items"])

    @pytest.mark.parametrize(("lang", "withdraw"), [("fi", "Suostumuksen voi peruuttaa"), ("en", "You may withdraw")])
    async def test_uniikkiaani_waitlist_lists_withdrawal(self, client, current, lang, withdraw):
        await current("uniikkiaani")
        body = (await client.get("/v1/register/statement", params={"format": "json", "lang": lang})).json()
        items = next(s for s in body["sections"] if s["key"] == "purposes")["items"]
        waitlist = next(i for i in items if "UniikkiLista" in i)
        assert withdraw in waitlist

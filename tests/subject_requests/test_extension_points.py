"""The hooks other modules plug into: package sections (the waitlist) and completion handlers (issue 8)."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from app.core.errors import Invalid
from app.subject_requests import package, service
from app.subject_requests.models import SubjectRequestEvent
from tests.subject_requests.test_export import check


class TestPackageSections:
    async def test_a_registered_section_is_in_the_package_and_the_letter(self, app, client, me, registrant, file,
                                                                         advance):
        async def notices(session, registrant_id: uuid.UUID) -> list[dict]:
            return [{"channel": "sms", "sent_at": "2026-05-01T10:00:00+00:00", "registrant": str(registrant_id)}]

        section = package.PackageSection("test_section", notices, title={"fi": "Testiosio", "en": "Test section"})
        app.state.wiring.package_sections.append(section)
        try:
            person = await registrant()
            made = await file(registrant_id=person)
            await advance(made["id"], person)
        finally:
            app.state.wiring.package_sections.remove(section)
        exported = await client.get(f"/v1/requests/{made['id']}/export", headers=me.headers)
        body = exported.json()
        check(body)
        assert body["data"]["test_section"] == [{"channel": "sms", "sent_at": "2026-05-01T10:00:00+00:00",
                                                    "registrant": person}]
        assert "test_section" in body["_meta"]["sections"]
        letter = await client.get(f"/v1/requests/{made['id']}/export", headers=me.headers, params={"format": "html"})
        # Unregistered now: the name stands in, read as words (issue 14: no raw codes in the letter).
        assert "Testiosio" not in letter.text and "test_section" not in letter.text
        assert "Test section" in letter.text


class TestCompletionHandlers:
    async def test_a_handler_runs_inside_complete_and_its_refusal_changes_nothing(self, app, client, me, registrant,
                                                                                  file, act, advance):
        calls: list[str] = []

        async def objection(session, ctx: service.CompletionContext) -> dict:
            calls.append(ctx.request["type"])
            if ctx.action.note == "refuse":
                raise Invalid("the handler refused", loc=["body", "note"])
            return {"objected": list(ctx.request["purposes"])}

        handlers = app.state.wiring.completion_handlers
        original = handlers["objection"]  # issue 8's real one, put back afterwards
        handlers["objection"] = objection
        try:
            person = await registrant()
            made = await file("objection", registrant_id=person, purposes=["market_research"])
            await advance(made["id"], person, until="in_progress")
            refused = await act(made["id"], "complete", note="refuse")
            assert refused.status_code == 422
            current = (await client.get(f"/v1/requests/{made['id']}", headers=me.headers)).json()
            assert current["status"] == "in_progress" and current["completed_at"] is None
            assert [e["action"] for e in current["events"]] == ["file", "verify", "start"]
            done = await act(made["id"], "complete")
            assert done.status_code == 200, done.text
            assert done.json()["outcome"]["objected"] == ["market_research"]
            assert calls == ["objection", "objection"]
        finally:
            handlers["objection"] = original
        async with app.state.db.sessionmaker() as session:
            actions = (await session.execute(select(SubjectRequestEvent.action).where(
                SubjectRequestEvent.request_id == uuid.UUID(made["id"])))).scalars().all()
        assert sorted(actions) == ["complete", "file", "start", "verify"]

"""The profile in force is read once per transaction, and a new version replaces the memo at once."""

from __future__ import annotations

from sqlalchemy import event

from app.auth.principal import SYSTEM
from app.register import service
from app.register.schemas import RegisterProfile
from tests.register.conftest import example


class TestProfileMemo:
    async def test_read_once_per_transaction_and_replaced_by_a_new_version(self, app, register_profile):
        statements: list[str] = []

        def count(_conn, _cursor, statement, *_args) -> None:
            if "register_version" in statement:
                statements.append(statement)

        engine = app.state.db.engine.sync_engine
        event.listen(engine, "before_cursor_execute", count)
        try:
            async with app.state.db.sessionmaker() as session:
                first = await service.current_version(session)
                again = await service.current_profile(session)
                await service.guardian_age(session)
                assert first is not None and again is first[1]
                assert len(statements) <= 2  # the newest key, and the document unless already parsed
                read_before = len(statements)
                written = await service.put_profile(session, actor=SYSTEM, wiring=app.state.wiring,
                                                    profile=RegisterProfile.model_validate(example("uniikkiaani")))
                after = await service.current_version(session)
                assert after is not None and after[0] == written.number == first[0] + 1
                assert after[1].controller.name == "UniikkiÄäni Oy"
                assert len([s for s in statements[read_before:] if s.lstrip().upper().startswith("SELECT")]) == 1
                await session.rollback()
                # A new transaction reads again, and finds the version in force (the write was rolled back).
                assert (await service.current_version(session))[0] == first[0]
        finally:
            event.remove(engine, "before_cursor_execute", count)

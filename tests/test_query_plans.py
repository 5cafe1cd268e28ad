"""The hot queries use indexes: EXPLAIN on SQLite and PostgreSQL finds no scan of a
whole table (activities, changes, renderings) for a poll, a sync, a multiget, a
time-range query or a PUT's checks."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_model.db import make_engine, make_session_factory
from crm_model.models import Activity, Contact
from crm_model.services import calendar as calendar_service
from tests.factories import ALICE, BOB, activity, soon, user

TABLES = ("activities", "calendar_changes", "activity_renderings", "users", "initial_window", "contacts")


@pytest.fixture
def session(crm) -> Session:
    crm.load({"users": [user(ALICE), user(BOB)],
              "activities": [activity(f"{who[0]}-{i}", who, soon(i % 400 - 30))
                             for who in (ALICE, BOB) for i in range(1500)]})
    crm.enable(ALICE)
    engine = make_engine(crm.database_url)
    with make_session_factory(engine, write=False).begin() as db:
        if db.get_bind().dialect.name == "postgresql":
            db.connection().exec_driver_sql("ANALYZE")
            # Tiny tables make a sequential scan cheapest; forbid it so that the plan
            # shows whether an index *can* answer the query.
            db.connection().exec_driver_sql("SET LOCAL enable_seqscan = off")
        yield db
    engine.dispose()


def _plan(db: Session, statement: Any, params: dict[str, Any]) -> str:
    compiled = statement.compile(dialect=db.get_bind().dialect)
    wanted = {name: value for name, value in params.items() if name in compiled.binds}
    state = compiled.construct_expanded_state(wanted)
    values = {name: _raw(value) for name, value in state.parameters.items()}
    if db.get_bind().dialect.name == "sqlite":
        args = tuple(values[name] for name in state.positiontup)
        rows = db.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + state.statement, args).all()
        return "\n".join(str(row[-1]) for row in rows)
    rows = db.connection().exec_driver_sql("EXPLAIN " + state.statement, values).all()
    return "\n".join(str(row[0]) for row in rows)


def _raw(value: Any) -> Any:
    """What the UTC column type would send: naive UTC."""
    return value.replace(tzinfo=None) if hasattr(value, "tzinfo") and value.tzinfo else value


def _assert_indexed(plan: str) -> None:
    for table in TABLES:
        # SQLite: "SCAN activities" (no index); PostgreSQL: "Seq Scan on activities"
        assert f"SCAN {table}\n" not in plan + "\n" and f"Seq Scan on {table}" not in plan, plan


def test_hot_queries_use_indexes(session):
    user_record = calendar_service.get_calendar_user(session, email=ALICE)
    hrefs = list(session.scalars(select(Activity.href).where(Activity.owner_id == user_record.id).limit(50)))
    offered = {"owner": user_record.id, "types": list(user_record.synced_types),
               "window_pos": user_record.window_pos, "variant": "v", "hrefs": hrefs}
    start = soon(10)
    plans = {
        "multiget": _plan(session, calendar_service._entries_query(True, False, False, True), offered),
        "month query": _plan(session, calendar_service._entries_query(False, True, True, True),
                             {**offered, "start": start, "end": start + timedelta(days=30)}),
        "first sync": _plan(session, calendar_service._entries_query(False, False, False, False), offered),
        "changes since": _plan(session, calendar_service._CHANGES_SINCE,
                               {"user_id": user_record.id, "position": user_record.sync_pos - 3}),
        "calendar user": _plan(session, calendar_service._USER_BY_EMAIL, {"email": ALICE}),
        "uid check": _plan(session, select(Activity.id).where(Activity.uid == "x").limit(1), {}),
        "attendee match": _plan(session, select(Contact.id).where(func.lower(Contact.email) == "k@x.jp"), {}),
    }
    for name, plan in plans.items():
        assert plan, name
        _assert_indexed(plan)
    # a multiget reads the hrefs asked for, never the owner's whole calendar
    assert "ix_activities_owner" not in plans["multiget"] and "href" in plans["multiget"], plans["multiget"]

"""Migration 0007 (incidents, incident members, snoozes) matches the models and goes back."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from hotglue_webhooks.storage.db import make_engine
from alembic.script import ScriptDirectory

from hotglue_webhooks.storage.migrate import alembic_config, upgrade
from hotglue_webhooks.storage.models import Base

NEW_TABLES = {"incidents", "incident_members", "snoozes", "commands"}  # 0007, 0008


def test_0007_creates_the_tables_the_models_describe_and_downgrades(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        upgrade(engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(connection)
            # The head (0007 and the migrations after it) matches the models exactly.
            assert context.get_current_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()
            assert compare_metadata(context, Base.metadata) == []  # every table, index and column
        config = alembic_config()
        with engine.connect() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0006")
            connection.commit()
        assert not NEW_TABLES & set(inspect(engine).get_table_names())
        assert "urgent" not in {column["name"] for column in inspect(engine).get_columns("events")}  # 0009
        upgrade(engine)
        assert NEW_TABLES <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()

"""Alembic environment: the one place the schema is created and changed."""

from logging.config import fileConfig

from alembic import context

from core.db import make_engine
from core.models import Base
from core.settings import settings

if context.config.config_file_name:
    fileConfig(context.config.config_file_name)

# Tests pass their own URL through the Alembic config; otherwise the settings decide.
url = context.config.get_main_option("sqlalchemy.url") or settings.database_url


def run_migrations() -> None:
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations()

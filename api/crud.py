"""Database operations behind the routes. Keyword-only arguments, no HTTP concerns."""

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.security import api_token_sha256, hash_password, new_api_token, verify_password
from core import storage, streams
from core.lifecycle import JOB, Lifecycle, move, utcnow
from core.models import (
    ApiToken,
    InlineInput,
    Job,
    JobItem,
    Model,
    ModelAlias,
    ModelVersion,
    User,
    Visibility,
    WebhookAttempt,
)


class AlreadyExists(Exception):
    pass


class QueueUnavailable(Exception):
    """The broker did not take the task; nothing was queued."""


def get_user_by_email(session: Session, *, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email.lower()))


def create_user(session: Session, *, email: str, password: str) -> User:
    user = User(email=email.lower(), hashed_password=hash_password(password))
    _add_unique(session, user)
    return user


def authenticate(session: Session, *, email: str, password: str) -> User | None:
    """The user, if the password is right; an unknown email costs the same hash as a known one,
    so timing does not tell which accounts exist."""
    user = get_user_by_email(session, email=email)
    if not verify_password(password, user.hashed_password if user else None):
        return None
    return user


def create_api_token(
    session: Session, *, user: User, name: str, scopes: list[str], days: int | None
) -> tuple[ApiToken, str]:
    """A new API token of the user, and the token itself (stored only as its hash)."""
    token = new_api_token()
    row = ApiToken(
        user_id=user.id, name=name, token_sha256=api_token_sha256(token), scopes=scopes,
        expires_at=utcnow() + timedelta(days=days) if days else None,
    )  # fmt: skip
    _add_unique(session, row)
    return row, token


def api_tokens_of(*, user: User) -> Select:
    return select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.created_at)


def create_model(session: Session, *, owner: User, fields: dict[str, Any]) -> Model:
    model = Model(owner_id=owner.id, **fields)
    _add_unique(session, model)
    return model


def page(session: Session, query: Select, *, offset: int, limit: int) -> tuple[list, int]:
    """The page's rows and the query's total, in one query (the total rides on each row as a
    window count); a second only for a page past the end, which has no row to carry it."""
    rows = session.execute(query.add_columns(func.count().over()).offset(offset).limit(limit))
    found = rows.all()
    if found:
        return [row[0] for row in found], found[0][1]
    if offset == 0:
        return [], 0
    return [], session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))


def visible_models(*, user: User) -> Select:
    mine_or_public = or_(Model.owner_id == user.id, Model.visibility == Visibility.PUBLIC)
    return select(Model).where(mine_or_public).order_by(Model.created_at.desc(), Model.id)


def update_model(session: Session, *, model: Model, change: dict[str, Any]) -> Model:
    """Sets the fields the change gives (a ModelUpdate's, None left out)."""
    for field, value in change.items():
        setattr(model, field, value)
    session.commit()
    return model


def versions_of(*, model: Model) -> Select:
    return (
        select(ModelVersion)
        .where(ModelVersion.model_id == model.id)
        .order_by(ModelVersion.number.desc())
    )


def jobs_of(*, owner: User) -> Select:
    return select(Job).where(Job.owner_id == owner.id).order_by(Job.created_at.desc(), Job.id)


def aliases_of(*, model: Model) -> Select:
    return select(ModelAlias).where(ModelAlias.model_id == model.id).order_by(ModelAlias.name)


def set_alias(session: Session, *, model: Model, name: str, version: ModelVersion) -> ModelAlias:
    """Points the model's alias at the version, made if new; the last of two at once wins."""
    for _ in range(2):  # a concurrent request may make the alias between the read and insert
        alias = session.get(ModelAlias, (model.id, name), with_for_update=True)
        if alias is not None:
            alias.version_id = version.id
            session.commit()
            return alias
        try:
            alias = ModelAlias(model_id=model.id, name=name, version_id=version.id)
            _add_unique(session, alias)
            return alias
        except AlreadyExists:
            continue
    raise AlreadyExists("the alias changed too often at once; try again")


def create_version(session: Session, *, model: Model, pushed_with: str | None) -> ModelVersion:
    """The model's next version, numbered one past the highest; retried if another request wins.
    pushed_with: the credential that pushed it (api/deps.credential_of)."""
    for _ in range(5):
        highest = session.scalar(
            select(func.max(ModelVersion.number)).where(ModelVersion.model_id == model.id)
        )
        version_id = uuid.uuid4()
        version = ModelVersion(
            id=version_id,
            model_id=model.id,
            number=(highest or 0) + 1,
            package_key=storage.package_key(version_id),
            build_log_key=storage.build_log_key(version_id),
            pushed_with=pushed_with,
        )
        try:
            _add_unique(session, version)
            return version
        except AlreadyExists:
            continue
    raise AlreadyExists("too many versions created at once for this model; try again")


def create_job(
    session: Session, *, job_id: uuid.UUID, owner: User, version: ModelVersion,
    inline: bytes | None, queued: bool, **fields: Any,
) -> Job:  # fmt: skip
    """A new job, its inline input(s) stored beside it in the same transaction: QUEUED (the
    caller sends its task), or UPLOADING while files are to be uploaded. AlreadyExists when its
    idempotency key is taken."""
    job = Job(
        id=job_id, owner_id=owner.id, version_id=version.id, status=JOB.uploading,
        log_key=storage.job_log_key(job_id), **fields,
    )  # fmt: skip
    if queued:
        _queue(JOB, job)
    if inline is not None:
        job.inline_input = InlineInput(data=inline)
    _add_unique(session, job)
    return job


def job_by_idempotency_key(session: Session, *, owner: User, key: str) -> Job | None:
    return session.scalar(select(Job).where(Job.owner_id == owner.id, Job.idempotency_key == key))


def items_of(*, job: Job) -> Select:
    return select(JobItem).where(JobItem.job_id == job.id).order_by(JobItem.index)


def delete(session: Session, *, row: Any) -> None:
    session.delete(row)
    session.commit()


def _add_unique(session: Session, row: Any) -> None:
    session.add(row)
    try:
        session.commit()
    except IntegrityError as error:
        session.rollback()
        raise AlreadyExists(str(error.orig)) from error


def mark_queued(
    session: Session, *, row: ModelVersion | Job, lifecycle: Lifecycle, send: Callable[[str], None]
) -> None:
    """Move a version or job to QUEUED and enqueue its task, or leave it as it was on failure.

    The state is committed before the message is sent, so a worker never sees a task for a row
    that is not queued yet.
    """
    previous = row.status
    _queue(lifecycle, row)
    session.commit()
    streams.status(lifecycle.what, row)  # before the task: a worker's RUNNING comes after it
    try:
        enqueue(send, str(row.id))
    except QueueUnavailable:  # the row goes back
        row.status = previous  # an undo of the move above, not a transition of its own
        row.queued_at = None
        session.commit()
        streams.status(lifecycle.what, row)
        raise


def _queue(lifecycle: Lifecycle, row: ModelVersion | Job) -> None:
    move(lifecycle, row, lifecycle.queued)
    row.queued_at = utcnow()


def enqueue(send: Callable[..., None], *args: str) -> None:
    """Sends a task; QueueUnavailable (a 503) whatever the broker client raises."""
    try:
        send(*args)
    except Exception as error:  # whatever the broker client raises
        raise QueueUnavailable(str(error)) from error


def webhook_attempts(session: Session, *, row: Job | ModelVersion) -> list[WebhookAttempt]:
    """The attempts at the row's webhook messages, oldest first."""
    column = WebhookAttempt.job_id if isinstance(row, Job) else WebhookAttempt.version_id
    query = select(WebhookAttempt).where(column == row.id).order_by(WebhookAttempt.id)
    return list(session.scalars(query))


def lock_version(session: Session, version: ModelVersion) -> None:
    """Holds the version's row until the commit, read afresh: no build, upload in parts or
    removal of it runs meanwhile. (with_for_update on the version itself would also lock its
    joined model, which PostgreSQL refuses.)"""
    session.execute(select(ModelVersion.id).where(ModelVersion.id == version.id).with_for_update())
    session.refresh(version)

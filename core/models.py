"""SQLAlchemy ORM models. API request/response shapes live apart, in api/schemas.py."""

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from core.lifecycle import JobStatus, VersionStatus, utcnow

# Model names end up in image labels, log lines and URLs: keep them to a plain slug.
MODEL_NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"
ALIAS_PATTERN = MODEL_NAME_PATTERN  # "prod", "staging", "v2-canary"


class Base(DeclarativeBase):
    pass


class Visibility(enum.StrEnum):
    PRIVATE = "private"
    PUBLIC = "public"


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    # Store the values (not the member names) so the database reads like the API.
    return Enum(cls, name=name, values_callable=lambda e: [m.value for m in e])


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class User(Timestamped, Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    hashed_password: Mapped[str] = mapped_column(String(255))
    # Signs the user's webhooks (core/webhooks.py); made on first use.
    webhook_secret: Mapped[str | None] = mapped_column(String(64))
    # A login token (JWT) names the generation it was made in; signing out or changing the
    # password moves it on, which ends every one made before (api/security.py).
    token_generation: Mapped[int] = mapped_column(default=0)


class ApiToken(Timestamped, Base):
    """A user's API token for scripts and CI: it acts as its user within its scopes until it is
    revoked (the row deleted) or expires. Only its SHA-256 is stored; the token is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(64))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebhookTarget:
    """Where a row's webhooks go and for which events (core/webhooks.py); None: nowhere."""

    webhook: Mapped[str | None] = mapped_column(String(2048))
    webhook_events: Mapped[list[str] | None] = mapped_column(JSON)


class Model(Timestamped, Base):
    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("owner_id", "name", name="uq_models_owner_name"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    visibility: Mapped[Visibility] = mapped_column(
        _enum(Visibility, "visibility"), default=Visibility.PRIVATE
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    versions: Mapped[list["ModelVersion"]] = relationship(back_populates="model")


class ModelVersion(WebhookTarget, Timestamped, Base):
    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint("model_id", "number", name="uq_versions_model_number"),
        Index("ix_model_versions_status_created_at", "status", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    model_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    number: Mapped[int]
    status: Mapped[VersionStatus] = mapped_column(
        _enum(VersionStatus, "version_status"), default=VersionStatus.UPLOADING
    )
    # The sealed package (core/storage.py) and its size, set when the build is accepted.
    package_key: Mapped[str] = mapped_column(String(255))
    package_size: Mapped[int | None] = mapped_column(BigInteger)
    package_sha256: Mapped[str | None] = mapped_column(String(64))
    # The package's files sent by content, beside its ZIP (core/contents.py): [{"path", "size",
    # "sha256", "executable"}, ...]; None when the ZIP holds every file.
    content_files: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    image_ref: Mapped[str | None] = mapped_column(String(512))
    image_digest: Mapped[str | None] = mapped_column(String(128))
    # The image's content key (workers/build/recipe.py): equal keys, equal images.
    content_key: Mapped[str | None] = mapped_column(String(64), index=True)
    reused: Mapped[bool] = mapped_column(default=False)
    # Who pushed it, by what credential: "API token 'ci'", "a login", "the web UI" (api/deps.py).
    pushed_with: Mapped[str | None] = mapped_column(String(160))
    # The Dockerfile the image was built from (core/dockerfile.py); None: built before them.
    dockerfile: Mapped[str | None] = mapped_column(Text)
    # The resolved requirements: [{"name", "version", "filename", "sha256"}, ...]
    lock: Mapped[list[dict[str, str]] | None] = mapped_column(JSON)
    # The package's modelfarm.yaml, validated: per-model sandbox limits within the caps.
    config: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The JSON Schema of a job's inputs (core/inputs.py); None: built before typed inputs.
    input_schema: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(default=0)
    build_log_key: Mapped[str] = mapped_column(String(255))
    error: Mapped[str | None] = mapped_column(Text)
    queued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    model: Mapped[Model] = relationship(back_populates="versions")


class PackageUpload(Timestamped, Base):
    """A version's package on its way in parts (core/multipart.py): the store's multipart
    upload, open until the build completes it into the version's package_key, or aborted."""

    __tablename__ = "package_uploads"

    version_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True
    )
    upload_id: Mapped[str] = mapped_column(String(1024))
    size: Mapped[int] = mapped_column(BigInteger)
    part_bytes: Mapped[int] = mapped_column(BigInteger)


class ModelAlias(Timestamped, Base):
    """A name on a model ("prod") for one of its READY versions. Jobs may name the alias instead
    of a version, so that moving it deploys a version, or rolls one back, in one call."""

    __tablename__ = "model_aliases"

    model_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("models.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    version_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), index=True
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class Job(WebhookTarget, Timestamped, Base):
    __tablename__ = "jobs"
    __table_args__ = (
        # A client's retry with the same Idempotency-Key finds the job it created.
        Index("uq_jobs_owner_idempotency_key", "owner_id", "idempotency_key", unique=True),
        Index("ix_jobs_finished_at", "finished_at"),
        Index("ix_jobs_status_created_at", "status", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    owner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    # None once the version's owner removed it (core/removal.py): the job stays, detached.
    version_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="SET NULL")
    )
    status: Mapped[JobStatus] = mapped_column(
        _enum(JobStatus, "job_status"), default=JobStatus.UPLOADING
    )
    # A single job's inputs by name: values, and files as {"name", "key": sealed object key
    # (None: sent inline, in InlineInput at "offset"), "size": bytes, None until sealed}
    # (core/inputs.py). A batch's are its items'.
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # A batch job's items, in order, instead of `inputs`: [{"name", "key", "offset", "size"}],
    # each the byte range [offset, offset + size) of the object at key (uploaded items have one
    # each) or, key None, of the job's InlineInput. None for a single job.
    batch: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    items_total: Mapped[int | None]
    items_done: Mapped[int] = mapped_column(default=0)
    items_failed: Mapped[int] = mapped_column(default=0)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    # [{"name": file name the model chose, "key": object key made from ids, "size": bytes}]
    outputs: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    exit_code: Mapped[int | None]
    log_key: Mapped[str] = mapped_column(String(255))
    run_seconds: Mapped[float | None]
    attempts: Mapped[int] = mapped_column(default=0)
    # Its files (inputs, outputs, log) were removed MODELFARM_JOB_RETENTION_DAYS after its end.
    data_removed: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Its input and output files' bytes, which count against its owner's storage quota (0 once
    # they are removed).
    stored_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    queued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    version: Mapped[ModelVersion] = relationship()
    # Deleted with the job: by the database, or by the ORM when it is in the session (a job
    # removed at once because its task could not be queued), which would else blank its key.
    inline_input: Mapped["InlineInput | None"] = relationship(
        passive_deletes=True, cascade="all, delete-orphan"
    )


class InlineInput(Base):
    """The bytes of a job's input(s) sent inline (an inline batch's items one after another).
    Kept in the database, written with the job in one transaction: durable, and no object
    storage round trip on the synchronous path."""

    __tablename__ = "job_inline_inputs"

    job_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    data: Mapped[bytes] = mapped_column(LargeBinary)


class JobItem(Base):
    """The outcome of one item of a batch job, written as the items finish."""

    __tablename__ = "job_items"

    job_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    index: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    status: Mapped[JobStatus] = mapped_column(_enum(JobStatus, "job_status"))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    # Its output files, named items/<index>/<name>, as in Job.outputs.
    outputs: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    run_seconds: Mapped[float | None]


class WebhookAttempt(Base):
    """One attempt to deliver a webhook message (workers/webhooks.py): its answer or error."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(128), index=True)
    job_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), index=True
    )
    version_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), index=True
    )
    event: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int]
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

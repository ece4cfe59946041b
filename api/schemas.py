"""Request and response shapes of the REST API."""

import uuid
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import (
    Base64Bytes,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    field_serializer,
    model_validator,
)

from api.security import Scope
from api.webhooks import WebhookRequest
from core import inputs
from core.models import ALIAS_PATTERN, MODEL_NAME_PATTERN, JobStatus, VersionStatus, Visibility
from core.settings import settings

T = TypeVar("T")
MAX_TOKEN_DAYS = 365

# Text that reaches the database, storage or logs: no NUL, newline or other control character.
PLAIN_TEXT = r"^[^\x00-\x1f\x7f]*$"


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    offset: int
    limit: int


class UserRegister(BaseModel):
    email: EmailStr = Field(max_length=320)
    password: str = Field(min_length=8, max_length=128, pattern=PLAIN_TEXT)


class PasswordChange(BaseModel):
    current_password: str = Field(min_length=1, max_length=128, pattern=PLAIN_TEXT)
    new_password: str = Field(min_length=8, max_length=128, pattern=PLAIN_TEXT)
    revoke_api_tokens: bool = Field(False, description="Also revoke every API token.")


class AccountRemoval(BaseModel):
    password: str = Field(min_length=1, max_length=128, pattern=PLAIN_TEXT)


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    email: str
    created_at: datetime


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"


class ApiTokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=64, pattern=PLAIN_TEXT, description='Such as "ci".')
    scopes: list[Scope] = Field(
        min_length=1, max_length=len(Scope),
        description="read: every GET; build: models, versions, builds; run: jobs, warming.",
        json_schema_extra={"uniqueItems": True},
    )  # fmt: skip
    expires_in_days: int | None = Field(None, ge=1, le=MAX_TOKEN_DAYS, description="None: never")

    @model_validator(mode="after")
    def _distinct(self) -> "ApiTokenCreate":
        if len(set(self.scopes)) != len(self.scopes):
            raise ValueError("name each scope once")
        return self


class ApiTokenPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    name: str
    scopes: list[Scope]
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None


class ApiTokenCreated(ApiTokenPublic):
    token: str = Field(description="Shown this once: keep it; the farm stores only its hash.")


class ModelCreate(BaseModel):
    name: str = Field(
        pattern=MODEL_NAME_PATTERN,
        description="Lower-case letters, digits, '.', '_' and '-'; 1 to 63 characters.",
    )
    description: str = Field(
        "", max_length=1000, pattern=PLAIN_TEXT, description="One line of plain text."
    )
    visibility: Visibility = Visibility.PRIVATE


class ModelUpdate(BaseModel):
    """What an owner may change about a model after its creation: both optional."""

    model_config = ConfigDict(extra="forbid")
    description: str | None = Field(
        None, max_length=1000, pattern=PLAIN_TEXT, description="One line of plain text."
    )
    visibility: Visibility | None = None


class ModelPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    owner_id: uuid.UUID
    name: str
    description: str
    visibility: Visibility
    created_at: datetime
    updated_at: datetime


class VersionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    model_id: uuid.UUID
    number: int
    status: VersionStatus
    package_sha256: str | None
    content_files: list[dict[str, Any]] | None = Field(
        description="The package's files sent by content beside its ZIP (PUT /api/versions/"
        "{id}/files): path, size, sha256, executable."
    )
    image_ref: str | None
    image_digest: str | None
    reused: bool
    pushed_with: str | None = Field(
        None,
        description='The credential that pushed it: "API token \'NAME\'", "a login" or '
        '"the web UI"; the user is the model\'s owner.',
    )
    input_schema: dict[str, Any] | None = Field(
        description="The JSON Schema of a job's `inputs` on this version, read from predict's "
        "signature at build time; null until the version is READY."
    )
    error: str | None
    created_at: datetime
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    webhook: str | None
    webhook_events: list[str] | None

    @model_validator(mode="after")
    def _image_once_ready(self) -> "VersionPublic":
        # A build records its image and inputs on the row just before it ends, for a build of
        # the same content waiting on it (workers/build/reuse.py): they are not the user's yet.
        if self.status != VersionStatus.READY:
            self.image_digest = self.input_schema = None
        return self


class AliasSet(BaseModel):
    version_id: uuid.UUID = Field(description="A READY version of this model.")


class AliasPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    name: str
    model_id: uuid.UUID
    version_id: uuid.UUID
    created_at: datetime
    updated_at: datetime


class UploadForm(BaseModel):
    url: str
    fields: dict[str, str] = Field(
        description="POST these as multipart/form-data to url, the file last as field `file`: "
        "the object store itself refuses a file over the size limit."
    )


class VersionCreated(BaseModel):
    version: VersionPublic
    upload_url: str = Field(description="PUT the model ZIP here, then start the build.")
    upload_form: UploadForm = Field(description="Or POST it with this form, capped in size.")
    upload_expires_in: int


class InlineFile(BaseModel):
    name: str = Field(
        pattern=inputs.FILE_NAME_PATTERN,
        description="The file name the model sees: letters, digits, '.', '_', '-'; no folder.",
    )
    data: Base64Bytes = Field(description="The file's bytes, base64.")


class BatchItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inputs: dict[str, Any] = Field(
        description="As a job's `inputs`, its files inline (a batch uploads only with batch_size)."
    )


_JOB_INPUT_WAYS = ("inputs", "input", "batch", "batch_size")


_BY_ALIAS = ("model_id", "alias")


def _given(name: str) -> dict:
    """JSON Schema: the body has this field, and not as null."""
    return {"required": [name], "properties": {name: {"type": "string"}}}


class JobCreate(WebhookRequest):
    """A job on a version, named by its id or by an alias of its model (`model_id` and `alias`):
    on typed `inputs` (the version's input_schema), or, for a model whose one required input is
    a file, on that file: uploaded afterwards (the default) or sent inline (`input`), or a
    batch: items inline (`batch`) or uploaded afterwards (`batch_size`)."""

    # The schema says it too, so that clients and fuzzers know: one way to name the version, at
    # most one way to give the input.
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {**_given("version_id"), "not": {"anyOf": [_given(name) for name in _BY_ALIAS]}},
                {"allOf": [_given(name) for name in _BY_ALIAS], "not": _given("version_id")},
            ],
            "not": {
                "anyOf": [
                    {"required": [first, second]}
                    for i, first in enumerate(_JOB_INPUT_WAYS)
                    for second in _JOB_INPUT_WAYS[i + 1 :]
                ]
            },
        }
    )

    version_id: uuid.UUID | None = None
    model_id: uuid.UUID | None = None
    alias: str | None = Field(None, pattern=ALIAS_PATTERN, description='Such as "prod".')
    inputs: dict[str, Any] | None = Field(
        None,
        description="By name, as the version's input_schema says: values, and files as "
        '{"name": "a.png", "data": "<base64>"} or {"upload": true} (then PUT to upload_urls).',
    )
    input: InlineFile | None = None
    batch: list[InlineFile | BatchItem] | None = Field(
        None, min_length=1, max_length=settings.max_batch_items,
        description="Items, each one file (for a model whose one required input is a file) or "
        "typed `inputs`.",
    )  # fmt: skip
    batch_size: int | None = Field(None, ge=1, le=settings.max_batch_items)

    @model_validator(mode="after")
    def _one_way(self) -> "JobCreate":
        by_alias = [name for name in _BY_ALIAS if getattr(self, name) is not None]
        if by_alias not in ([], list(_BY_ALIAS)) or (self.version_id is not None) == bool(by_alias):
            raise ValueError("name the version: give version_id, or model_id with alias")
        given = [name for name in _JOB_INPUT_WAYS if name in self.model_fields_set]
        if len(given) > 1:
            raise ValueError(
                f"give at most one of inputs, input, batch and batch_size, not {given}"
            )
        return self


class JobPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    owner_id: uuid.UUID
    version_id: uuid.UUID | None = Field(
        description="null once the version's owner removed it: the job stays, detached."
    )
    status: JobStatus
    inputs: dict[str, Any] = Field(
        description="A single job's inputs, defaults applied: values, and files as name and size"
    )
    result: dict[str, Any] | None
    error: str | None
    exit_code: int | None
    run_seconds: float | None = Field(description="Wall time of the model's sandboxed run")
    items_total: int | None = Field(description="A batch job's items; null for a single job")
    items_done: int = Field(description="Items that have run, failed ones included")
    items_failed: int
    created_at: datetime
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    webhook: str | None
    webhook_events: list[str] | None
    data_removed: bool = Field(
        description="Its files were removed MODELFARM_JOB_RETENTION_DAYS after its end."
    )

    @field_serializer("inputs")
    def _public_inputs(self, value: dict[str, Any]) -> dict[str, Any]:
        return inputs.public(value)


class JobCreated(BaseModel):
    job: JobPublic
    upload_url: str | None = Field(
        None, description="When one file awaits its upload: PUT it here, then run the job."
    )
    upload_urls: dict[str, str] | list[str] | None = Field(
        None,
        description="The files that await their upload, by input name (a batch_size job's "
        "items: item i to the i-th URL). PUT each, then run the job.",
    )
    upload_forms: dict[str, UploadForm] | list[UploadForm] | None = Field(
        None, description="The same uploads as forms the object store caps in size (POST)."
    )
    upload_expires_in: int | None = None


class JobItemPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    index: int
    status: JobStatus
    result: dict[str, Any] | None
    error: str | None
    run_seconds: float | None


class WarmRequested(BaseModel):
    version_id: uuid.UUID
    detail: str


class OutputFile(BaseModel):
    name: str
    size: int
    url: str


class JobOutputs(BaseModel):
    job_id: uuid.UUID
    status: JobStatus
    outputs: list[OutputFile]
    expires_in: int

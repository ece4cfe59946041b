"""Request and response shapes of the REST API."""

import uuid
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from core.models import MODEL_NAME_PATTERN, JobStatus, VersionStatus, Visibility

T = TypeVar("T")

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


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    email: str
    created_at: datetime


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"


class ModelCreate(BaseModel):
    name: str = Field(
        pattern=MODEL_NAME_PATTERN,
        description="Lower-case letters, digits, '.', '_' and '-'; 1 to 63 characters.",
    )
    description: str = Field(
        "", max_length=1000, pattern=PLAIN_TEXT, description="One line of plain text."
    )
    visibility: Visibility = Visibility.PRIVATE


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
    image_ref: str | None
    image_digest: str | None
    reused: bool
    error: str | None
    created_at: datetime
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None


class VersionCreated(BaseModel):
    version: VersionPublic
    upload_url: str = Field(description="PUT the model ZIP here, then start the build.")
    upload_expires_in: int


class JobCreate(BaseModel):
    version_id: uuid.UUID


class JobPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    owner_id: uuid.UUID
    version_id: uuid.UUID
    status: JobStatus
    result: dict[str, Any] | None
    error: str | None
    exit_code: int | None
    run_seconds: float | None = Field(description="Wall time of the model's sandboxed run")
    created_at: datetime
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None


class JobCreated(BaseModel):
    job: JobPublic
    upload_url: str = Field(description="PUT the input file here, then run the job.")
    upload_expires_in: int


class OutputFile(BaseModel):
    name: str
    size: int
    url: str


class JobOutputs(BaseModel):
    job_id: uuid.UUID
    status: JobStatus
    outputs: list[OutputFile]
    expires_in: int

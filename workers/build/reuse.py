"""Images the registry already has: a build whose content key matches one its model may have is
served from there, without building (workers/build/builder.py)."""

import uuid

from sqlalchemy import or_, select, update

from core import registry
from core.db import session_scope
from core.lifecycle import VERSION
from core.models import Model, ModelVersion, Visibility
from workers.build.buildlog import StreamingLog


def reusable_image(owner_id: uuid.UUID, repository: str, key: str, log: StreamingLog):
    """The digest of an image with this content key that this model may have without a build:
    its own, or one of its owner's other models' or a public model's, put into its repository
    without moving a byte. Never one held only by a stranger's private model: reusing it
    would tell them that it holds exactly these files."""
    tag = registry.content_tag(key)
    if found := registry.Registry().manifest_digest(repository, tag):
        log(f"reuse: the registry has this exact image ({repository}:c-{key[:12]}...)\n")
        return found
    with session_scope() as session:
        source = session.execute(
            select(ModelVersion.model_id, ModelVersion.image_digest)
            .join(Model)
            .where(ModelVersion.content_key == key, ModelVersion.image_digest.is_not(None))
            .where(ModelVersion.status.in_([VERSION.running, VERSION.succeeded]))
            .where(or_(Model.owner_id == owner_id, Model.visibility == Visibility.PUBLIC))
            .limit(1)
        ).first()
    if source is None:
        return None
    shared = registry.model_repository(source.model_id)
    copied = registry.Registry().copy_image(shared, source.image_digest, repository, tag)
    if copied:
        log(f"reuse: the registry has this exact image under {shared}; put into {repository}\n")
    return copied


def record_image(
    version_id: uuid.UUID, attempt: int, key: str, digest: str, input_schema: dict
) -> None:
    """Puts the pushed image and the inputs its smoke test described on the (still BUILDING)
    row before the content claim is let go, so that a build of the same content waiting for
    the claim finds and reuses both (the API shows them once the row is READY)."""
    with session_scope() as session:
        session.execute(
            update(ModelVersion)
            .where(ModelVersion.id == version_id)
            .where(ModelVersion.attempts == attempt)
            .values(content_key=key, image_digest=digest, input_schema=input_schema)
        )


def input_schema_of(key: str) -> dict | None:
    """The input schema recorded with an image of this content (the same files, so the same
    predict), by the build that made it."""
    with session_scope() as session:
        return session.scalar(
            select(ModelVersion.input_schema)
            .where(ModelVersion.content_key == key, ModelVersion.input_schema.is_not(None))
            .limit(1)
        )

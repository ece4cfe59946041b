"""Aliases: a name on a model ("prod") for one of its READY versions, moved in one call."""

import uuid
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response, status
from sqlalchemy.orm import Session

from api import crud
from api.deps import OwnedModel, ReadableModel, SessionDep, require_ready
from api.errors import responses
from api.schemas import AliasPublic, AliasSet
from core.models import ALIAS_PATTERN, Model, ModelAlias, ModelVersion

router = APIRouter(
    prefix="/api/models/{model_id}/aliases",
    tags=["aliases"],
    responses=responses(401, 404, 422, 503),
)
AliasName = Annotated[str, Path(pattern=ALIAS_PATTERN, description='Such as "prod".')]


@router.get("", response_model=list[AliasPublic])
async def list_aliases(model: ReadableModel, session: SessionDep):
    return session.scalars(crud.aliases_of(model=model)).all()


@router.put("/{alias}", response_model=AliasPublic, responses=responses(400, 403, 409, 429))
def set_alias(alias: AliasName, body: AliasSet, model: OwnedModel, session: SessionDep):
    """Points the alias at a READY version of this model (made if new): jobs that name the alias
    run that version from now on."""
    return point(session, model, alias, body.version_id)


def point(session: Session, model: Model, alias: str, version_id: uuid.UUID) -> ModelAlias:
    """Points the model's alias at one of its versions (also the web UI's): 404 for another
    model's version, 409 for one not READY or an alias moved too often at once."""
    version = session.get(ModelVersion, version_id)
    if version is None or version.model_id != model.id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "This model has no version with that id")
    require_ready(version, "an alias")
    try:
        return crud.set_alias(session, model=model, name=alias, version=version)
    except crud.AlreadyExists as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from None


@router.delete("/{alias}", status_code=status.HTTP_204_NO_CONTENT, responses=responses(403, 429))
def delete_alias(alias: AliasName, model: OwnedModel, session: SessionDep):
    """Removes the alias; jobs that name it are refused (404) from now on."""
    found = session.get(ModelAlias, (model.id, alias))
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"This model has no alias {alias!r}")
    crud.delete(session, row=found)
    return Response(status_code=status.HTTP_204_NO_CONTENT)

from fastapi import APIRouter, HTTPException, Request, Response, status

from api import crud
from api.deps import (
    CurrentUser,
    OwnedModel,
    PageDep,
    ReadableModel,
    SessionDep,
    StorageDep,
    credential_of,
)
from api.errors import responses
from api.schemas import (
    ModelCreate,
    ModelPublic,
    ModelUpdate,
    Page,
    VersionCreated,
    VersionPublic,
)
from core import removal
from core.registry import Registry
from core.settings import settings
from core.storage import package_upload_key

router = APIRouter(prefix="/api/models", tags=["models"], responses=responses(401, 422, 503))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ModelPublic,
    responses=responses(400, 409, 429),
)
def create_model(body: ModelCreate, session: SessionDep, user: CurrentUser):
    try:
        return crud.create_model(session, owner=user, fields=body.model_dump())
    except crud.AlreadyExists:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"You already have a model named {body.name!r}"
        ) from None


@router.get("", response_model=Page[ModelPublic])
async def list_models(session: SessionDep, user: CurrentUser, paging: PageDep):
    items, total = crud.page(session, crud.visible_models(user=user), **paging)
    return Page(items=items, total=total, **paging)


@router.get("/{model_id}", response_model=ModelPublic, responses=responses(404))
async def get_model(model: ReadableModel):
    return model


@router.patch("/{model_id}", response_model=ModelPublic, responses=responses(400, 403, 404, 429))
def update_model(body: ModelUpdate, model: OwnedModel, session: SessionDep):
    """Changes the model's description or visibility (owner only). Made private, its versions
    stop being others' to run; their jobs already made stay theirs."""
    return crud.update_model(session, model=model, change=body.model_dump(exclude_none=True))


@router.get("/{model_id}/versions", response_model=Page[VersionPublic], responses=responses(404))
async def list_versions(model: ReadableModel, session: SessionDep, paging: PageDep):
    items, total = crud.page(session, crud.versions_of(model=model), **paging)
    return Page(items=items, total=total, **paging)


@router.post(
    "/{model_id}/versions",
    status_code=status.HTTP_201_CREATED,
    response_model=VersionCreated,
    responses=responses(403, 404, 409, 429),
)
def create_version(
    model: OwnedModel, session: SessionDep, storage: StorageDep, request: Request
):  # fmt: skip
    try:
        version = crud.create_version(session, model=model, pushed_with=credential_of(request))
    except crud.AlreadyExists as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from None
    return VersionCreated(
        version=VersionPublic.model_validate(version),
        upload_url=storage.presigned_put(package_upload_key(version.id)),
        upload_form=storage.presigned_post(
            package_upload_key(version.id), max_bytes=settings.max_package_bytes
        ),
        upload_expires_in=int(storage.url_lifetime.total_seconds()),
    )


@router.delete(
    "/{model_id}", status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(403, 404, 409, 429),
)  # fmt: skip
def delete_model(model: OwnedModel, session: SessionDep, storage: StorageDep):
    """Removes the model with every version, image, alias and job on it, and their data."""
    versions = removal.versions_of(session, model.id)
    problem = removal.still_active(session, versions=versions)
    if problem:
        raise HTTPException(status.HTTP_409_CONFLICT, problem)
    removal.remove_versions(session, storage, Registry(), versions, model=model)
    return Response(status_code=status.HTTP_204_NO_CONTENT)

"""API tokens for scripts and CI: made, listed and revoked with a login token (not with another
API token). A token is shown once, when made; the farm keeps only its hash."""

import uuid

from fastapi import APIRouter, HTTPException, Response, status

from api import crud
from api.deps import CurrentUser, SessionDep
from api.errors import responses
from api.schemas import ApiTokenCreate, ApiTokenCreated, ApiTokenPublic
from core.models import ApiToken

router = APIRouter(prefix="/api/tokens", tags=["tokens"], responses=responses(401, 403, 422, 503))


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=ApiTokenCreated,
    responses=responses(400, 429),
)  # fmt: skip
def create_token(body: ApiTokenCreate, session: SessionDep, user: CurrentUser):
    """A token that acts as you within its scopes: `Authorization: Bearer mf_…`."""
    row, token = crud.create_api_token(
        session, user=user, name=body.name, scopes=[str(scope) for scope in body.scopes],
        days=body.expires_in_days,
    )  # fmt: skip
    return ApiTokenCreated(**ApiTokenPublic.model_validate(row).model_dump(), token=token)


@router.get("", response_model=list[ApiTokenPublic])
async def list_tokens(session: SessionDep, user: CurrentUser):
    return session.scalars(crud.api_tokens_of(user=user)).all()


@router.delete("/{token_id}", status_code=status.HTTP_204_NO_CONTENT, responses=responses(404, 429))
def revoke_token(token_id: uuid.UUID, session: SessionDep, user: CurrentUser):
    """Revokes the token: its next request is refused (401)."""
    row = session.get(ApiToken, token_id)
    if row is None or row.user_id != user.id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "You have no API token with that id")
    crud.delete(session, row=row)
    return Response(status_code=status.HTTP_204_NO_CONTENT)

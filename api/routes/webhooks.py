"""Webhooks (core/webhooks.py): each user's signing secret, and the attempts at a job's or a
version's messages. The secret is account business: it takes a login, not an API token
(api/security.py)."""

from fastapi import APIRouter
from sqlalchemy import update

from api import crud
from api.deps import CurrentUser, OwnedJob, OwnedVersion, SessionDep
from api.errors import responses
from api.webhooks import WebhookAttemptPublic, WebhookSecret
from core import webhooks
from core.models import User

router = APIRouter(tags=["webhooks"], responses=responses(401, 422, 503))
SECRET_PATH = "/api/users/me/webhook-secret"


@router.get(SECRET_PATH, response_model=WebhookSecret, responses=responses(403))
async def get_webhook_secret(user: CurrentUser, session: SessionDep):
    """The secret that signs your webhooks; made on first use."""
    secret = webhooks.secret_of(session, user.id)
    session.commit()
    return WebhookSecret(secret=secret)


@router.post(SECRET_PATH, response_model=WebhookSecret, responses=responses(403, 429))
def rotate_webhook_secret(user: CurrentUser, session: SessionDep):
    """A new secret: messages signed from now on use it (an attempt already under way may not)."""
    secret = webhooks.new_secret()
    session.execute(update(User).where(User.id == user.id).values(webhook_secret=secret))
    session.commit()
    return WebhookSecret(secret=secret)


@router.get(
    "/api/jobs/{job_id}/webhooks", response_model=list[WebhookAttemptPublic],
    responses=responses(404),
)  # fmt: skip
async def list_job_webhooks(job: OwnedJob, session: SessionDep):
    """Each attempt at the job's webhook messages: its answer or error, oldest first."""
    return crud.webhook_attempts(session, row=job)


@router.get(
    "/api/versions/{version_id}/webhooks", response_model=list[WebhookAttemptPublic],
    responses=responses(403, 404),
)  # fmt: skip
async def list_version_webhooks(version: OwnedVersion, session: SessionDep):
    """Each attempt at the version's build webhook messages, oldest first."""
    return crud.webhook_attempts(session, row=version)

"""The API's side of webhooks (core/webhooks.py): what a request gives, the check of its
destination, and what is shown."""

from datetime import datetime
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field

from core import webhooks
from core.webhooks import Event


class WebhookRequest(BaseModel):
    webhook: str | None = Field(
        None, max_length=webhooks.MAX_URL_LENGTH, pattern=r"^https?://[^\x00-\x20\x7f]+$",
        description="An http(s) URL that is POSTed the row's JSON, signed as Standard Webhooks "
        "says with your secret (GET /api/users/me/webhook-secret), when it starts and ends.",
    )  # fmt: skip
    webhook_events: list[Event] = Field(
        default_factory=lambda: list(webhooks.DEFAULT_EVENTS), min_length=1, max_length=2,
        description='Which events are sent: "start", "completed" (the default).',
    )  # fmt: skip


class BuildStart(WebhookRequest):
    model_config = ConfigDict(extra="forbid")


class WebhookAttemptPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    message_id: str = Field(description="The webhook-id header: the same on every attempt.")
    event: Event
    attempt: int
    status_code: int | None = Field(description="The receiver's answer; null when none came.")
    error: str | None = Field(description="Why the attempt did not deliver; null when it did.")
    sent_at: datetime


class WebhookSecret(BaseModel):
    secret: str = Field(description="Verifies the webhook-signature header (whsec_...).")


def target_fields(request: WebhookRequest) -> dict[str, Any]:
    """The row's webhook fields, once its destination is allowed; 422 saying why otherwise
    (as for any other invalid field)."""
    if request.webhook is None:
        return {}
    try:
        webhooks.destination(request.webhook)
    except webhooks.Refused as refused:
        problem = {"loc": ("body", "webhook"), "msg": str(refused), "type": "value_error"}
        raise RequestValidationError([problem]) from None
    return {"webhook": request.webhook, "webhook_events": sorted(set(request.webhook_events))}

"""What the API takes and answers about template triggers: never a secret, but once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from craton_wf.api.schemas import Link
from craton_wf.services.inputs import Input


class TriggerCreate(Input):
    description: str | None = Field(default=None, max_length=4096)


class TriggerRead(BaseModel):
    """A trigger as the API shows it: where to call it, who it launches as."""

    id: str
    template_id: int
    project_id: str
    url: str = Field(description="where it is called: POST with a signed body or the secret")
    description: str | None
    created_by: int | None = Field(description="the user its launches act as")
    created_by_name: str | None
    created_at: datetime


class TriggerCreated(TriggerRead):
    secret: str = Field(description="the trigger's secret: answered this once, never again")


class TriggerList(BaseModel):
    triggers: list[TriggerRead]
    links: list[Link]


class TriggerCall(BaseModel):
    """The body a trigger's URL takes: the launch's parameters, and a job name."""

    params: dict[str, Any] = Field(default_factory=dict)
    name: str | None = None

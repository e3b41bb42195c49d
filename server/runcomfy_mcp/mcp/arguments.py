"""The built-in tools' arguments, each declared once: one pydantic model gives the schema clients see and the parsing.

(Model tools take their schema from the model's spec, checked by the core's validator instead.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from runcomfy_mcp.domain.ids import MAX_MODEL_ID_CHARS, REQUEST_ID, check_request_id
from runcomfy_mcp.domain.views import HistoryStatus
from runcomfy_mcp.errors import InvalidArgumentsError

DEFAULT_WAIT_S = 45.0
MAX_WAIT_S = 600.0
DEFAULT_LIST_LIMIT = 20
MAX_LIST_LIMIT = 200


class _Arguments(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoArguments(_Arguments):
    pass


class JobArguments(_Arguments):
    request_id: str = Field(json_schema_extra={"pattern": REQUEST_ID.pattern})

    @field_validator("request_id", mode="before")
    @classmethod
    def _a_runcomfy_id(cls, value: object) -> str:
        return check_request_id(value)  # its own error names the id and what ids look like


class ResultArguments(JobArguments):
    include_cost: bool = Field(default=False, description="Also show the job's cost.")
    download: bool = Field(default=False, description="Also save the outputs to the user's output folder.")
    preview: bool = Field(default=True, description="Show frames across the video, or the image.")


class WaitArguments(ResultArguments):
    timeout_s: float = Field(
        default=DEFAULT_WAIT_S, ge=1, le=MAX_WAIT_S, description="How long to wait in this call, in seconds."
    )


class ListJobsArguments(_Arguments):
    status: HistoryStatus | None = Field(default=None, description="Only jobs whose last known status is this.")
    limit: int = Field(default=DEFAULT_LIST_LIMIT, ge=1, le=MAX_LIST_LIMIT)


class FindModelsArguments(_Arguments):
    query: str | None = Field(
        default=None, max_length=200, description="Words to look for, e.g. 'kling image to video'."
    )
    category: str | None = Field(default=None, max_length=100, description="e.g. image-to-video, text-to-image.")
    limit: int = Field(default=10, ge=1, le=50)
    refresh: bool = Field(default=False, description="Read RunComfy's catalog again instead of the cached copy.")


class ModelArguments(_Arguments):
    model_id: str = Field(max_length=MAX_MODEL_ID_CHARS, description="A model_id from find_models.")


class RunModelArguments(ModelArguments):
    input: dict[str, Any] = Field(default_factory=dict, description="The model's inputs, as describe_model lists them.")


Args = TypeVar("Args", bound=_Arguments)


def parse(model: type[Args], tool: str, arguments: Mapping[str, Any]) -> Args:
    """The arguments as `model`, or InvalidArgumentsError listing every problem, each naming its field."""
    try:
        return model.model_validate(dict(arguments))
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            field = ".".join(str(part) for part in error["loc"]) or "(arguments)"
            if error["type"] == "missing":
                problems.append(f"{field}: missing; {tool} needs it.")
            elif error["type"] == "extra_forbidden":
                allowed = ", ".join(model.model_fields)
                problems.append(f"{field}: {tool} has no such argument; it takes {allowed}.")
            else:
                problems.append(f"{field}: {error['input']!r} is not accepted: {error['msg']}.")
        raise InvalidArgumentsError(tool, problems) from exc

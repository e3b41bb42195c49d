"""What RunComfy ids may look like: they go into URL paths and file names, so they are checked first."""

from __future__ import annotations

import re

from runcomfy_mcp.errors import InvalidArgumentsError, InvalidRequestIdError

REQUEST_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
# vendor/model/…: segments that start with a letter or digit, so never "." or ".."
MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*){1,7}$")
MAX_MODEL_ID_CHARS = 200


def check_request_id(request_id: object) -> str:
    if not isinstance(request_id, str) or not REQUEST_ID.fullmatch(request_id):
        raise InvalidRequestIdError(request_id)
    return request_id


def check_model_id(model_id: object, tool: str = "run_model") -> str:
    if not isinstance(model_id, str) or len(model_id) > MAX_MODEL_ID_CHARS or not MODEL_ID.fullmatch(model_id):
        shown = repr(model_id)[:80]
        raise InvalidArgumentsError(
            tool,
            [f"model_id: {shown} is not a RunComfy model id (like 'vendor/model/task'). Use find_models to find one."],
        )
    return model_id

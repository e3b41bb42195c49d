"""What RunComfy ids and tokens may look like: ids go into URL paths and file names, tokens into headers, so both
are checked first."""

from __future__ import annotations

import re

from runcomfy_mcp.errors import InvalidArgumentsError, InvalidRequestIdError, InvalidTokenError

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


# What RunComfy's own server accepts as a token: printable ASCII without spaces, at most 4,096 characters. Nothing
# else can go into a header as is (and a control character could split it).
_TOKEN_SHAPE = re.compile(r"[\x21-\x7e]+")
MAX_TOKEN_CHARS = 4096


def check_token(token: str, source: str) -> str:
    """`token` if it can be sent as a bearer credential; `source` says where it came from, for the message."""
    if len(token) <= MAX_TOKEN_CHARS and _TOKEN_SHAPE.fullmatch(token):
        return token
    why = (
        f"it is over {MAX_TOKEN_CHARS:,} characters long"
        if len(token) > MAX_TOKEN_CHARS
        else ("it contains characters a token cannot have (spaces, control or non-ASCII characters)")
    )
    raise InvalidTokenError(
        f"The RunComfy API token {source} cannot be used: {why}, so nothing was sent. Copy the token again from "
        "your RunComfy profile (Profile → API keys), without quotes or extra text."
    )

"""What a RunComfy request id may look like: it goes into URL paths and file names, so it is checked first."""

from __future__ import annotations

import re

from runcomfy_mcp.errors import InvalidRequestIdError

REQUEST_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def check_request_id(request_id: object) -> str:
    if not isinstance(request_id, str) or not REQUEST_ID.fullmatch(request_id):
        raise InvalidRequestIdError(request_id)
    return request_id

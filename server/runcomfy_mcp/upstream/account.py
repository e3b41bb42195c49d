"""RunComfy's account API (another host than the Model API): the balance one wallet pays every job from."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from runcomfy_mcp.upstream.client import RunComfyClient


class Balance(BaseModel):
    model_config = ConfigDict(extra="allow")

    balance_usd: float
    currency: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_microdollars(cls, data: Any) -> Any:
        """Some answers carry only `balance_microdollars`; the shape is not documented."""
        if isinstance(data, dict) and data.get("balance_usd") is None and data.get("balance_microdollars") is not None:
            return {**data, "balance_usd": float(data["balance_microdollars"]) / 1_000_000}
        return data


class AccountClient:
    """The balance, through the same plumbing as the Model API (token, retries, one error tree) at its own URL."""

    def __init__(self, client: RunComfyClient) -> None:
        self._client = client  # a RunComfyClient whose base URL is the account API's

    async def balance(self, *, token: str | None = None) -> Balance:
        return await self._client.fetch(Balance, "/prod/v2/balance", action="Reading the RunComfy balance", token=token)

    async def balance_usd(self, token: str | None) -> float:
        return (await self.balance(token=token)).balance_usd

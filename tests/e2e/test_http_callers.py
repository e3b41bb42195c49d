"""HTTP mode shared by several people: each brings a token, and sees and touches only their own jobs."""

from __future__ import annotations

import base64

import httpx
import pytest

from conftest import TOKEN, ClientFactory
from helpers import structured, text_of
from http_servers import http_client, http_server
from images import make_image
from mcp import Client
from runcomfy_mcp.sandbox.simulator import Simulator
from runcomfy_mcp.settings import Settings

pytestmark = pytest.mark.anyio

OTHER_TOKEN = "rc-other-caller-9d81c3aa"
LITE = "seedance_1_0_lite_image_to_video"
ARGS = {
    "prompt": "a cat",
    "first_frame_image_url": "data:image/png;base64," + base64.b64encode(make_image(640, 480)).decode(),
}


async def test_two_callers_see_only_their_own_jobs(api_url: str, simulator: Simulator) -> None:
    simulator.tokens.add(OTHER_TOKEN)
    async with http_server(api_url, token=None) as url:
        async with http_client(url, TOKEN) as alice:
            job = structured(await alice.call_tool(LITE, ARGS))["request_id"]
        async with http_client(url, OTHER_TOKEN) as bob:
            assert structured(await bob.call_tool("list_jobs", {}))["jobs"] == []
            for tool, args in [
                ("get_status", {"request_id": job}),
                ("get_result", {"request_id": job, "download": True}),
                ("wait_for_result", {"request_id": job, "timeout_s": 1}),
                ("cancel", {"request_id": job}),
            ]:
                result = await bob.call_tool(tool, args)
                assert result.is_error and "no job" in text_of(result) and "in your history" in text_of(result), tool
            resources = [str(r.uri) for r in (await bob.list_resources()).resources]
            assert f"runcomfy://jobs/{job}" not in resources
            with pytest.raises(Exception, match="Unknown resource"):
                await bob.read_resource(f"runcomfy://jobs/{job}")
        async with http_client(url, TOKEN) as alice:
            mine = structured(await alice.call_tool("list_jobs", {}))["jobs"]
            assert [j["request_id"] for j in mine] == [job]
            status = await alice.call_tool("get_status", {"request_id": job})
            assert structured(status)["status"] == "in_queue"
    assert simulator.jobs[job].cancelled is False
    assert simulator.calls.count("POST", "/cancel") == 0


async def test_a_caller_without_a_token_is_told_how_to_send_one(api_url: str, simulator: Simulator) -> None:
    async with http_server(api_url) as url, http_client(url, None) as anonymous:
        assert len((await anonymous.list_tools()).tools) == 15
        result = await anonymous.call_tool(LITE, ARGS)
        assert result.is_error and "Authorization: Bearer" in text_of(result)
    assert simulator.calls.count("POST") == 0  # the server's own token was not used for them


async def test_shared_token_is_used_only_when_asked(api_url: str, simulator: Simulator) -> None:
    async with http_server(api_url, "--shared-token") as url, http_client(url, None) as anonymous:
        result = await anonymous.call_tool(LITE, ARGS)
        assert not result.is_error, text_of(result)
        listed = structured(await anonymous.call_tool("list_jobs", {}))["jobs"]
        assert [j["request_id"] for j in listed] == [structured(result)["request_id"]]
    assert simulator.calls.count("POST") == 1


async def test_dns_rebinding_protection_is_on(api_url: str) -> None:
    async with http_server(api_url) as url, httpx.AsyncClient() as raw:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        evil_host = await raw.post(url, json=body, headers={"Host": "evil.example:8000"})
        assert evil_host.status_code in (400, 403, 421)
        evil_origin = await raw.post(url, json=body, headers={"Origin": "http://evil.example"})
        assert evil_origin.status_code in (400, 403)


async def test_a_caller_whose_token_is_refused_is_told_to_fix_their_own_header(
    api_url: str, simulator: Simulator
) -> None:
    revoked = "rc-revoked-caller-token-4b1f0d2e9a"  # the simulator does not know it: RunComfy answers 401
    async with http_server(api_url) as url, http_client(url, revoked) as caller:
        result = await caller.call_tool(LITE, ARGS)
        words = text_of(result)
        assert result.is_error and "rejected the token in your Authorization header" in words, words
        assert "'Authorization: Bearer <your token>'" in words and "RUNCOMFY_API_TOKEN" not in words
        assert "restart the server" not in words
        account = text_of(await caller.call_tool("get_account", {}))  # the balance is unknown, and says why
        assert "RunComfy balance: unknown" in account and "your Authorization header" in account, account
    assert simulator.calls.count("POST", "/v1/models") == 1  # tried once, refused, never retried


async def test_the_person_at_the_machine_is_told_to_fix_the_servers_token(connect: ClientFactory, api_url: str) -> None:
    async with connect(Settings(api_token="rc-revoked-server-token-77aa", base_url=api_url)) as client:
        result = await client.call_tool(LITE, ARGS)
    assert result.is_error and "RUNCOMFY_API_TOKEN in the server's environment" in text_of(result)
    assert "Authorization header" not in text_of(result)


async def test_a_server_over_http_never_offers_local_files(connect: ClientFactory, api_url: str) -> None:
    """It refuses local paths, so neither a schema, a description nor a prompt may invite one."""
    kling = "kling/kling-v2-1/pro/image-to-video"

    async def offers(client: Client) -> list[str]:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        image = tools[LITE].input_schema["properties"]["first_frame_image_url"]["description"]
        described = text_of(await client.call_tool("describe_model", {"model_id": kling}))
        animate = next(p for p in (await client.list_prompts()).prompts if p.name == "animate_image")
        argument = next(a.description or "" for a in animate.arguments or [] if a.name == "image")
        schema = await client.read_resource(f"runcomfy://models/{LITE}/schema")
        return [str(image), described, argument, str(schema.contents[0])]

    async with http_server(api_url) as url, http_client(url, TOKEN) as remote:
        for text in await offers(remote):
            assert "local file" not in text and "https:// URL" in text, text
    async with connect(Settings(api_token=TOKEN, base_url=api_url)) as local:
        for text in await offers(local):
            assert "local file" in text, text

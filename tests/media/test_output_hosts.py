"""Where a shared server fetches outputs from: RunComfy's hosts on both of its domains, nowhere else."""

from __future__ import annotations

from runcomfy_mcp.media.downloads import OutputHosts
from runcomfy_mcp.settings import Settings


def test_outputs_from_both_runcomfy_domains_are_fetched_and_lookalikes_are_not() -> None:
    settings = Settings()
    hosts = OutputHosts.shared(settings.base_url, settings.output_host_patterns())
    for url in (
        "https://files.runcomfy.com/out/a.mp4",
        "https://playgrounds-storage-public.runcomfy.net/a.png",
        "https://serverless-api-storage.runcomfy.net/b.wav",
    ):
        assert hosts.allows(url), url
    for url in (
        "http://files.runcomfy.com/a.mp4",  # never in the clear
        "https://runcomfy.com.evil.test/a.mp4",
        "https://evilruncomfy.com/a.mp4",
        "https://files.runcomfy.co/a.mp4",
    ):
        assert not hosts.allows(url), url
    assert "https://*.runcomfy.com" in settings.player_media_domains()

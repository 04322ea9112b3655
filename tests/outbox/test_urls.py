"""The SSRF guard for callback URLs."""

from __future__ import annotations

import pytest

from app.outbox.urls import UnsafeCallbackUrl, check_callback_url, validate_callback_url


class TestValidateCallbackUrl:
    @pytest.mark.parametrize(("url", "reason"), [
        ("http://example.com/hook", "only https is allowed"),
        ("ftp://example.com/hook", "an absolute http(s) URL with a host is required"),
        ("/relative/hook", "an absolute http(s) URL with a host is required"),
        ("https://user:pw@example.com/hook", "credentials in the URL are not allowed"),
        ("https://example.com:99999/", "not a valid URL"),
        ("https://127.0.0.1/hook", "loopback"),
        ("https://localhost:8443/hook", "loopback"),
        ("https://[::1]/hook", "loopback"),
        ("https://[::ffff:127.0.0.1]/hook", "loopback"),
        ("https://10.1.2.3/hook", "private"),
        ("https://192.168.0.10/hook", "private"),
        ("https://172.16.5.4/hook", "private"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://[fe80::1]/hook", "link-local"),
        ("https://0.0.0.0/hook", "unspecified"),
        ("https://224.0.0.1/hook", "multicast"),
        ("https://100.64.0.1/hook", "not public"),
        ("https://no-such-host.invalid/hook", "does not resolve"),
        # IPv6 encodings of IPv4 hosts (issue 16): 6to4, Teredo, NAT64 and IPv4-compatible reach the same hosts.
        ("https://[2002:7f00:1::]/", "loopback"),
        ("https://[2002:a9fe:a9fe::1]/latest", "link-local"),
        ("https://[2002:c0a8:1::]/", "private"),
        ("https://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", "loopback"),
        ("https://[64:ff9b::a9fe:a9fe]/latest", "link-local"),
        ("https://[64:ff9b::7f00:1]/", "loopback"),
        ("https://[64:ff9b:1::a00:1]/", "private"),
        ("https://[::7f00:1]/", "loopback"),
    ])
    async def test_refused(self, url: str, reason: str) -> None:
        with pytest.raises(UnsafeCallbackUrl) as caught:
            await validate_callback_url(url, allowlist=[], loc=["status_callback_url"])
        assert reason in caught.value.detail
        assert caught.value.errors[0]["loc"] == ["status_callback_url"]

    async def test_public_https_is_allowed(self) -> None:
        assert await validate_callback_url("https://93.184.215.14/hook?x=1", allowlist=[]) == "https://93.184.215.14/hook?x=1"

    async def test_allowlisted_host_may_use_http_and_private_addresses(self) -> None:
        assert await validate_callback_url("http://localhost:8080/cb", allowlist=["LOCALHOST"]) == "http://localhost:8080/cb"
        assert await validate_callback_url("https://10.0.0.5/cb", allowlist=["10.0.0.5"]) == "https://10.0.0.5/cb"
        with pytest.raises(UnsafeCallbackUrl):
            await validate_callback_url("http://127.0.0.1:8080/cb", allowlist=["localhost"])

    async def test_pinned_to_the_checked_address(self) -> None:
        checked = await check_callback_url("http://localhost:8080/cb?a=1", allowlist=["localhost"])
        url, host = checked.pinned()
        assert url in ("http://127.0.0.1:8080/cb?a=1", "http://[::1]:8080/cb?a=1")
        assert host == "localhost:8080"
        v6 = await check_callback_url("https://[2606:4700::1111]/x", allowlist=[])
        assert v6.pinned() == ("https://[2606:4700::1111]/x", "[2606:4700::1111]")

"""Webhook destinations, checked without sending anything: each name is resolved by a stand-in
resolver, and an attempt at a refused destination is recorded without a connection."""

import pytest

from core import endpoints, webhooks
from core.settings import Settings, settings
from workers.webhooks import Message, _post


def _resolving_to(*addresses: str) -> webhooks.Resolver:
    return lambda _host, _port: list(addresses)


@pytest.fixture
def strict(monkeypatch):
    monkeypatch.setattr(settings, "webhook_allow_private", False)


@pytest.mark.parametrize(
    ("addresses", "because"),
    [
        (("10.0.0.1",), "a loopback or private address"),
        (("93.184.216.34", "192.168.1.7"), "192.168.1.7, a loopback or private address"),
        (("169.254.169.254",), "link-local"),
        (("fe80::1",), "link-local"),
        (("::ffff:10.0.0.1",), "a loopback or private address"),
        (("2002:7f00:1::",), "a loopback or private address"),  # 6to4 of 127.0.0.1
        (("2002:a9fe:a9fe::",), "link-local"),  # 6to4 of 169.254.169.254
        (("2001:0:4136:e378:8000:63bf:80ff:fffe",), "a loopback or private address"),  # Teredo
        (("64:ff9b::a00:1",), "a loopback or private address"),  # NAT64 of 10.0.0.1
        (("fd00:ec2::254",), "a loopback or private address"),
        (("100.64.0.1",), "a loopback or private address"),  # carrier-grade NAT
        (("224.0.0.1",), "not an address of one host"),
        ((), "cannot be resolved"),
    ],
)
def test_a_name_resolving_to_an_address_that_is_not_public_is_refused(strict, addresses, because):
    with pytest.raises(webhooks.Refused, match=because):
        webhooks.destination("https://hooks.example.com/in", resolve=_resolving_to(*addresses))


def test_a_public_address_is_the_one_sent_to():
    resolve = _resolving_to("93.184.216.34", "93.184.216.35")
    assert webhooks.destination("https://hooks.example.com:8443/in", resolve=resolve) == (
        "93.184.216.34"
    )


def test_allowing_private_destinations_never_allows_link_local_ones(monkeypatch):
    monkeypatch.setattr(settings, "webhook_allow_private", True)
    assert webhooks.destination("http://x/", resolve=_resolving_to("10.0.0.1")) == "10.0.0.1"
    with pytest.raises(webhooks.Refused, match="link-local"):
        webhooks.destination("http://x/", resolve=_resolving_to("169.254.169.254"))


def _farm_ports() -> list[int]:
    return sorted({port for _, port in endpoints.service_addresses()})


@pytest.mark.parametrize("port", _farm_ports())
@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "::ffff:127.0.0.1", "2002:7f00:1::",
                                     "64:ff9b::7f00:1", "127.0.0.2"])  # fmt: skip
def test_the_farms_own_services_are_never_a_target_even_with_private_ones_allowed(
    monkeypatch, port, address
):
    monkeypatch.setattr(settings, "webhook_allow_private", True)
    with pytest.raises(webhooks.Refused, match=f"the farm's own services listens on port {port}"):
        webhooks.destination(f"http://receiver:{port}/", resolve=_resolving_to(address))


def test_the_services_ports_come_from_the_settings():
    ports = _farm_ports()
    for port in (settings.api_port, 5000, 8333, 6379, 5432, 9333, 8888, 8080, 9471, 9474):
        assert port in ports
    allowed = (
        webhooks.destination.__wrapped__ if hasattr(webhooks.destination, "__wrapped__") else None
    )
    assert allowed is None  # destination is a plain function: nothing cached per URL


def test_another_port_of_loopback_stays_allowed_where_private_ones_are(monkeypatch):
    monkeypatch.setattr(settings, "webhook_allow_private", True)
    free = max(_farm_ports()) + 1
    assert webhooks.destination(f"http://x:{free}/", resolve=_resolving_to("127.0.0.1")) == (
        "127.0.0.1"
    )


@pytest.mark.parametrize(
    "url", ["ftp://example.com/", "http:///path", "https://user:pw@example.com/", "http://x:port/"]
)
def test_urls_the_farm_cannot_send_to_are_refused(url):
    with pytest.raises(webhooks.Refused):
        webhooks.destination(url, resolve=_resolving_to("93.184.216.34"))


def test_an_attempt_is_checked_again_when_it_is_made(strict):
    """A name that resolved to a public address when the webhook was given may not by the time
    of an attempt: the attempt is refused, with no connection made (10.0.0.1 is never reached:
    the check comes first)."""
    message = Message(id="msg_1", url="http://10.0.0.1:9/hook", body="{}",
                      secret=webhooks.new_secret(), attempt=1)  # fmt: skip
    status_code, error = _post(message)
    assert status_code is None and error.startswith("Not sent: ") and "private" in error


def test_messages_keep_their_id_across_attempts_and_secrets_are_standard():
    assert webhooks.message_id("job", "42", "completed") == "msg_job_42_completed"
    secret = webhooks.new_secret()
    assert secret.startswith("whsec_") and webhooks.new_secret() != secret


def test_the_default_retries_span_at_least_ten_minutes_in_at_least_five_attempts():
    delays = Settings.model_fields["webhook_retry_delays_s"].default
    assert len(delays) + 1 >= 5 and sum(delays) >= 600
    assert Settings.model_fields["webhook_allow_private"].default is False

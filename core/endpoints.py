"""The farm's own services, where the settings say they listen: never a webhook's target
(core/webhooks.py), even where private targets are allowed (MODELFARM_WEBHOOK_ALLOW_PRIVATE,
for tests), so that no user can make the farm send requests to its API, object store,
registry, database, Redis, metrics ports or Docker engine."""

import functools
import ipaddress
import os
import socket
import urllib.parse

from sqlalchemy import make_url

from core.metrics import PORT_OFFSETS, port_of
from core.settings import settings

IP = ipaddress.IPv4Address | ipaddress.IPv6Address


def _host_port(address: str, default_port: int) -> tuple[str, int]:
    """("host", port) of "host:port", "[v6]:port" or a URL."""
    parts = urllib.parse.urlsplit(address if "://" in address else f"tcp://{address}")
    return parts.hostname or "", parts.port or default_port


def service_addresses() -> list[tuple[str, int]]:
    """(host, port) of every service of the farm, from the settings."""
    found = [
        (settings.api_host, settings.api_port),
        _host_port(settings.s3_endpoint, 80),
        _host_port(settings.s3_client_endpoint, 80),
        _host_port(settings.registry, 443),
        _host_port(settings.registry_base_url, 443),
        _host_port(settings.redis_url, 6379),
    ]
    if settings.s3_capacity_url:
        found.append(_host_port(settings.s3_capacity_url, 80))
    store_host = _host_port(settings.s3_endpoint, 80)[0]
    found += [(store_host, port) for port in settings.s3_server_ports]
    database = make_url(settings.database_url)
    if database.host:
        found.append((database.host, database.port or 5432))
    found += [("127.0.0.1", port_of(service)) for service in PORT_OFFSETS if port_of(service)]
    docker_host = os.environ.get("DOCKER_HOST", "")
    if docker_host.startswith("tcp://"):
        found.append(_host_port(docker_host, 2375))
    return found


@functools.cache
def _services() -> tuple[frozenset[tuple[IP, int]], frozenset[int]]:
    """(address, port) of each service (its host resolved once), and the ports of those bound
    to every address of their host (0.0.0.0, ::)."""
    exact, everywhere = set(), set()
    for host, port in service_addresses():
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError:  # a host this process cannot resolve, it cannot reach either
            continue
        for info in infos:
            ip = ipaddress.ip_address(info[4][0].split("%")[0])
            if ip.is_unspecified:
                everywhere.add(port)
            else:
                exact.add((_loopback_as_one(ip), port))
    return frozenset(exact), frozenset(everywhere)


def _loopback_as_one(ip: IP) -> IP:
    return ipaddress.ip_address("127.0.0.1") if ip.is_loopback else ip


def is_farm_service(ip: IP, port: int) -> bool:
    """Whether ip:port may reach one of the farm's own services."""
    exact, everywhere = _services()
    return (_loopback_as_one(ip), port) in exact or (port in everywhere and not ip.is_global)

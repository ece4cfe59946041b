"""The local object store's other ports, probed unsigned as any local process could (issue 30):
only the S3 gateway, which checks signatures, reads or changes an object. The filer's HTTP (which
read and moved any object) answers nothing, the master's HTTP takes no administrative request,
the volume server reads and writes only with the master's JWT, every gRPC port takes only clients
holding the store's own certificate, and the Iceberg and Lance catalogs do not listen."""

import mmap
import os
import socket
import ssl
import struct
import time
import uuid
from pathlib import Path

import httpx
import pytest
from jose import jwt

from core.settings import settings
from tests.integration.stack import ROOT

# SeaweedFS as scripts/up.sh starts it.
STORE = ROOT / settings.data_dir / "seaweedfs"
FILER = "http://127.0.0.1:8888"
MASTER = "http://127.0.0.1:9333"
VOLUME = "http://127.0.0.1:8080"
GRPC_PORTS = (19333, 18080, 18888, 18333)  # master, volume server, filer, S3 gateway
UNUSED_CATALOGS = (8181, 9101)  # Iceberg REST and Lance, SeaweedFS's defaults
HEADER = struct.Struct(">IQI")  # a needle's cookie, id and size, before its data's size


@pytest.fixture
def probe(storage):
    """An object of the farm's, incompressible (the volume server keeps it as it is) and marked
    so that its bytes can be found on the volume server's disk."""
    key = f"probe/{uuid.uuid4().hex}"
    content = f"probe-{uuid.uuid4().hex}".encode() + os.urandom(4096)
    storage.put_bytes(key, content)
    yield key, content
    storage.delete(key)


def _file_id(content: bytes) -> str:
    """The volume server's id for the file that holds `content` (volume, needle id, cookie),
    read from its volumes on disk, newest first."""
    volumes = sorted((STORE / "data").glob("*.dat"), key=os.path.getmtime, reverse=True)
    for volume in volumes:
        if volume.stat().st_size == 0:
            continue
        with (
            volume.open("rb") as file,
            mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data,
        ):
            at = data.find(content[:40])
            if at >= 0:
                cookie, needle, _size = HEADER.unpack(data[at - 20 : at - 4])
                return f"{volume.stem.rsplit('_', 1)[-1]},{needle:x}{cookie:08x}"
    raise AssertionError("the probe's bytes are on none of the store's volumes")


def _signed(file_id: str) -> dict[str, str]:
    """What the master hands the S3 gateway to read a file: a JWT from the store's read key."""
    read_key = (STORE / "config/security.toml").read_text().split("[jwt.signing.read]")[1]
    key = read_key.split('"')[1]
    token = jwt.encode({"fid": file_id, "exp": int(time.time()) + 10}, key, algorithm="HS256")
    return {"Authorization": f"BEARER {token}"}


def test_the_filer_answers_no_unsigned_request_and_the_store_is_unchanged(storage, probe):
    key, content = probe
    path = f"/buckets/{settings.s3_bucket}/{key}"
    for method, url in (
        ("GET", path), ("PUT", path), ("DELETE", path),
        ("POST", f"{path}-moved?mv.from={path}"),
    ):  # fmt: skip
        answer = httpx.request(method, FILER + url, content=b"theirs", timeout=5)
        assert answer.status_code == 404, (method, url, answer.status_code)
    assert storage.get_bytes(key) == content
    assert storage.size(f"{key}-moved") is None


def test_the_volume_server_reads_and_changes_no_file_unsigned(storage, probe):
    key, content = probe
    url = f"{VOLUME}/{_file_id(content)}"
    for method in ("GET", "HEAD", "DELETE", "POST", "PUT"):
        answer = httpx.request(method, url, files={"file": b"theirs"} if method == "POST" else None)
        assert answer.status_code in (400, 401), (method, answer.status_code)
        assert content not in answer.content
    assert httpx.get(url, headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 401
    # The refusal is the signature's: signed with the store's key, the same request reads it.
    assert httpx.get(url, headers=_signed(_file_id(content))).content == content
    assert storage.get_bytes(key) == content


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/dir/assign"),  # would hand out a JWT that writes a file
        ("POST", "/submit"),
        ("GET", f"/col/delete?collection={settings.s3_bucket}"),  # would delete the bucket's data
        ("GET", "/vol/grow?count=1"),
        ("GET", "/vol/vacuum"),
        ("GET", "/dir/lookup?volumeId=1"),
        ("GET", "/dir/status"),
    ],
)
def test_the_master_takes_no_unsigned_request_that_reads_or_changes_data(
    storage, probe, method, path
):
    key, content = probe
    for spoofed in ({}, {"X-Forwarded-For": "192.0.2.1", "X-Real-IP": "192.0.2.1"}):
        files = {"file": b"theirs"} if method == "POST" else None
        answer = httpx.request(method, MASTER + path, headers=spoofed, files=files, timeout=5)
        assert answer.status_code == 401, (path, spoofed, answer.status_code)
    assert storage.get_bytes(key) == content


@pytest.mark.parametrize("port", GRPC_PORTS)
def test_grpc_ports_take_only_clients_with_the_stores_certificate(port):
    plain = socket.create_connection(("127.0.0.1", port), timeout=5)
    with plain:  # gRPC without TLS: the HTTP/2 preface gets nothing back
        plain.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        assert plain.recv(100) == b""
    with pytest.raises(ssl.SSLError, match="CERTIFICATE_REQUIRED"):
        _grpc_over_tls(port, _tls())
    # The refusal is the certificate's: with the store's own, the same port answers.
    with_certificate = _tls()
    tls = STORE / "config/tls"
    with_certificate.load_cert_chain(tls / "store.crt", tls / "store.key")
    assert _grpc_over_tls(port, with_certificate)


def _tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    return context


def _grpc_over_tls(port: int, context: ssl.SSLContext) -> bytes:
    """The first bytes an HTTP/2 server sends (its SETTINGS frame) after the preface."""
    with context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5)) as tls:
        tls.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        return tls.recv(100)


@pytest.mark.parametrize("port", UNUSED_CATALOGS)
def test_the_stores_unused_catalogs_do_not_listen(port):
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_the_store_keeps_its_keys_private():
    config = STORE / "config"
    for secret in (config / "security.toml", config / "tls/store.key", config / "tls/ca.key"):
        assert secret.stat().st_mode & 0o077 == 0, secret
    assert Path(config).stat().st_mode & 0o077 == 0

"""The local object store's other ports, probed unsigned as any local process could: the
filer's HTTP (which read and moved any object: issue 30) answers no request, and the Iceberg
and Lance catalogs do not listen. (The master's HTTP is still open: see the README.)"""

import socket
import uuid

import httpx
import pytest

from core.settings import settings

FILER = "http://127.0.0.1:8888"  # SeaweedFS's filer, as scripts/up.sh starts it
UNUSED_CATALOGS = (8181, 9101)  # Iceberg REST and Lance, SeaweedFS's defaults


def test_the_filer_answers_no_unsigned_request_and_the_store_is_unchanged(storage):
    key = f"probe/{uuid.uuid4().hex}"
    storage.put_bytes(key, b"mine")
    path = f"/buckets/{settings.s3_bucket}/{key}"
    try:
        for method, url in (
            ("GET", path), ("PUT", path), ("DELETE", path),
            ("POST", f"{path}-moved?mv.from={path}"),
        ):  # fmt: skip
            answer = httpx.request(method, FILER + url, content=b"theirs", timeout=5)
            assert answer.status_code == 404, (method, url, answer.status_code)
        assert storage.get_bytes(key) == b"mine"
        assert storage.size(f"{key}-moved") is None
    finally:
        storage.delete(key)


@pytest.mark.parametrize("port", UNUSED_CATALOGS)
def test_the_stores_unused_catalogs_do_not_listen(port):
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()

"""The cluster as the tests see it: its hosts' engines, its database, its queues, and the
script's verbs on hosts (kill, start, cut, join). Addresses and paths are scripts/cluster.sh's."""

import base64
import contextlib
import hashlib
import io
import json
import subprocess
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
from celery import Celery
from dotenv import dotenv_values
from sqlalchemy import create_engine, text

from core.registry import IMAGE_MANIFEST_TYPES
from core.settings import settings
from modelfarm import Client
from tests.utils import PASSWORD, ROOT, make_zip

API_URL = "http://198.18.0.2:8000"
SERVICES = "198.18.0.1"
ENGINES = Path("/run/modelfarm-cluster")
# How long one step of a host may take to show: taking a task, starting a run, a takeover.
STEP_S = 120


class Cluster:
    SCRIPT = ROOT / "scripts" / "cluster.sh"

    def __init__(self) -> None:
        self.dir = (ROOT / settings.data_dir).resolve() / "cluster"
        self._engines: dict[str, docker.DockerClient] = {}
        self._database = None
        self._celery = None

    def script(self, *args: str, timeout: float = 120) -> None:
        subprocess.run([str(self.SCRIPT), *args], check=True, timeout=timeout)

    @contextlib.contextmanager
    def lost(self, host: str, *, how: str) -> Iterator[None]:
        """For a block, the host is lost: it dies ("kill"; then boots again) or is cut off
        ("cut"; then joins again)."""
        self.script(how, host)
        try:
            yield
        finally:
            self.script({"kill": "start", "cut": "join"}[how], host)

    @property
    def secrets(self) -> dict[str, str]:
        return dotenv_values(self.dir / "secrets.env")

    def engine(self, host: str) -> docker.DockerClient:
        if host not in self._engines:
            self._engines[host] = docker.DockerClient(
                base_url=f"unix://{ENGINES / host / 'docker.sock'}", timeout=120
            )
        return self._engines[host]

    def row(self, table: str, row_id: str) -> dict:
        """A row of the cluster's database, as it is."""
        if self._database is None:
            password = self.secrets["PG_PASSWORD"]
            self._database = create_engine(
                f"postgresql+psycopg://modelfarm:{password}@{SERVICES}:5432/modelfarm"
            )
        with self._database.connect() as connection:
            found = connection.execute(
                text(f"SELECT * FROM {table} WHERE id = :id"), {"id": row_id}
            )
            return dict(found.mappings().one())

    @property
    def control(self):
        """Celery's remote control of the cluster's workers."""
        if self._celery is None:
            url = f"redis://:{self.secrets['REDIS_PASSWORD']}@{SERVICES}:6379/0"
            self._celery = Celery(broker=url)
        return self._celery.control

    def only(self, queue: str, host: str, others: list[str]) -> "Steering":
        """For a block: only `host` takes tasks from `queue`; `others` stop taking them."""
        return Steering(self.control, queue, host, others)

    def register(self) -> Client:
        """A new user's client, logged in."""
        return self.new_user_clients(1)[0]

    def new_user_clients(self, count: int) -> list[Client]:
        """A new user, logged in, as `count` clients of its own."""
        email = f"cluster-{uuid.uuid4().hex[:12]}@example.com"
        with Client(API_URL) as anonymous:
            anonymous.register(email, PASSWORD)
            token = anonymous.login(email, PASSWORD)
        return [Client(API_URL, token) for _ in range(count)]

    def worker_log(self, host: str) -> str:
        return (self.dir / "logs" / f"{host}-worker.log").read_text(errors="replace")

    def worker_entries(self, host: str) -> list[dict]:
        """The JSON lines of the host's worker log."""
        entries = []
        for line in self.worker_log(host).splitlines():
            with contextlib.suppress(ValueError):
                entries.append(json.loads(line))
        return entries

    def publish_wheel(self, name: str, module_source: str) -> None:
        """A pure-Python wheel `name` 1.0 on the services host's package index."""
        folder = self.dir / "services" / "index" / "simple" / name.replace("_", "-")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}-1.0-py3-none-any.whl").write_bytes(_wheel(name, module_source))

    def close(self) -> None:
        for client in self._engines.values():
            client.close()
        if self._database is not None:
            self._database.dispose()


class Steering:
    def __init__(self, control, queue: str, host: str, others: list[str]) -> None:
        self.control, self.queue = control, queue
        self.host = host
        self.others = [f"{queue}@{other}" for other in others]

    def __enter__(self) -> None:
        replies = self.control.cancel_consumer(self.queue, destination=self.others, reply=True)
        assert len(replies) == len(self.others), replies

    def __exit__(self, *_exc) -> None:
        self.control.add_consumer(self.queue, destination=self.others, reply=True)


def _wheel(name: str, module_source: str) -> bytes:
    info = f"{name}-1.0.dist-info"
    files = {
        f"{name}.py": module_source.encode(),
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = [
        f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}"
        for path, data in files.items()
    ]
    files[f"{info}/RECORD"] = ("\n".join([*record, f"{info}/RECORD,,"]) + "\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, data in files.items():
            archive.writestr(zipfile.ZipInfo(path, date_time=(2020, 1, 1, 0, 0, 0)), data)
    return buffer.getvalue()


# A model that says what it was given; "sleep N" first sleeps N seconds, and "... big" adds an
# output too large to be kept in the job's row (stored at once). `setup_s` makes its setup (and
# so its build's smoke test) take that long.
def echo_model(marker: str, *, setup_s: float = 0, uses: str = "") -> bytes:
    """`uses`: a module from a wheel (requirements.txt asks for it, predict.py imports it)."""
    predict = f"""# {marker}
import time
{f"import {uses}" if uses else ""}


class Predictor:
    def setup(self):
        time.sleep({setup_s})

    def predict(self, input_path, output_dir):
        data = input_path.read_text()
        if data.startswith("sleep "):
            time.sleep(float(data.split()[1]))
        (output_dir / "out.txt").write_text(data.upper())
        if data.endswith(" big"):
            (output_dir / "big.bin").write_bytes(bytes(100_000))
"""
    files = {"predict.py": predict}
    if uses:
        files["requirements.txt"] = f"{uses}==1.0\n"
    return make_zip(files)


def registry_layers(image_ref: str) -> list[str]:
    """The layer digests of an image in the cluster's registry, base first."""
    repository, digest = image_ref.split("/", 1)[1].split("@")
    manifest = httpx.get(
        f"http://{SERVICES}:5000/v2/{repository}/manifests/{digest}",
        headers={"Accept": IMAGE_MANIFEST_TYPES},
    ).raise_for_status()
    return [layer["digest"] for layer in manifest.json()["layers"]]


def job_input(data: str) -> dict:
    return {"input": {"name": "input.txt", "data": base64.b64encode(data.encode()).decode()}}

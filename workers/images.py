"""Image verbs on the Docker engine, named like the CLI: tag, push, pull; and run_step, a
container run for what it makes (a dependency set's install).

A failing build step is the package's fault (BuildFailed); a push or pull that does not land is
the farm's (FarmFault), and is retried.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import docker
import requests
from docker.errors import APIError, ImageNotFound
from docker.models.containers import Container
from urllib3.exceptions import ReadTimeoutError

from core.errors import FarmFault, UserFacingError
from workers import cache

Log = Callable[[str], None]
REGISTRY = "the registry"
ENGINE = "the Docker engine"


class BuildFailed(UserFacingError):
    """A step of the image build failed or ran out of time."""


def docker_client(timeout: int = 120) -> docker.DockerClient:
    return docker.from_env(timeout=timeout)


@contextmanager
def run_step(
    client: docker.DockerClient,
    *,
    image: str,
    command: list[str],
    inputs: Path,
    extract_into: str,
    name: str,
    time_limit_s: int,
    log: Log,
    volume: str | None = None,
    keep: bool = False,
) -> Iterator[Container]:
    """Runs command as root in a container of image, with no network and the tar `inputs`
    extracted into the directory `extract_into`; yields the stopped container once the command
    has succeeded (to read what it made). It is removed afterwards, with its volume (an
    anonymous one at the path `volume`, if asked for), unless `keep` and all went well: then
    the caller owns it. The container is called `name`, so one that an interrupted attempt left
    is removed by the next."""
    remove_container(client, name)
    container = client.containers.create(
        image, command, name=name, user="0", network_mode="none", hostname="build",
        volumes=[volume] if volume else None,
    )  # fmt: skip
    succeeded = False
    try:
        with inputs.open("rb") as tar:
            container.put_archive(extract_into, tar)
        container.start()
        try:
            exit_code = container.wait(timeout=time_limit_s)["StatusCode"]
        except requests.exceptions.RequestException as error:
            if not read_timed_out(error):
                raise  # the engine went away: the farm's fault, retried
            raise _timed_out(time_limit_s) from None
        log(container.logs().decode(errors="replace"))
        if exit_code != 0:
            raise BuildFailed(
                f"The image build failed: `{' '.join(command)}` exited {exit_code}; the build "
                "log shows why."
            )
        yield container
        succeeded = True
    finally:
        if not (keep and succeeded):
            container.remove(force=True, v=True)


def remove_container(client: docker.DockerClient, name: str) -> None:
    """Removes the container called name, and its anonymous volumes, if there is one."""
    with suppress(docker.errors.NotFound):
        client.containers.get(name).remove(force=True, v=True)


def read_timed_out(error: Exception) -> bool:
    """Whether the engine's answer stopped for the whole time limit: urllib3 raises that as it
    is from a streamed answer, requests as ReadTimeout or, over the engine's unix socket, as a
    ConnectionError saying so. Any other error (an engine that cannot be reached) is not."""
    if isinstance(error, requests.exceptions.ConnectionError):
        return "Read timed out" in str(error)
    return isinstance(error, (ReadTimeoutError, requests.exceptions.ReadTimeout))


def _timed_out(time_limit_s: int) -> BuildFailed:
    return BuildFailed(f"The image build timed out after {time_limit_s} s.")


def tag(client: docker.DockerClient, image_id: str, repository: str, name: str) -> None:
    client.api.tag(image_id, repository, name)


def push(client: docker.DockerClient, repository: str, name: str, log: Log) -> None:
    for chunk in client.api.push(repository, tag=name, stream=True, decode=True):
        if "error" in chunk:
            raise FarmFault(REGISTRY, f"pushing {repository}:{name} failed: {chunk['error']}")
        if "status" in chunk and "progressDetail" not in chunk:
            log(f"push: {chunk['status']}\n")


def pull(client: docker.DockerClient, reference: str) -> bool:
    """Makes reference (repository@digest or repository:tag) present locally, and records the
    use (workers/cache.py); a pull that adds to the engine's images trims them to the budget.
    Whether it pulled (False: the image was there)."""
    try:
        cache.touch(client.images.get(reference).id)
        return False
    except ImageNotFound:
        pass
    try:
        image = client.images.pull(reference)
    except APIError as error:
        detail = f"pulling {reference} failed: {error.explanation or error}"
        raise FarmFault(REGISTRY, detail) from error
    cache.touch(image.id)
    cache.trim_to_budget(client)
    return True


def image_id(client: docker.DockerClient, reference: str) -> str:
    try:
        return client.images.get(reference).id
    except ImageNotFound:
        raise FarmFault(ENGINE, f"the image {reference} is not present on this engine") from None

"""Whose fault a failure is: the user's (shown as the row's error) or the farm's (retried).

A UserFacingError's message is a whole sentence that says what to fix; it becomes the version's
or job's `error`. Everything else is the farm's own fault: a dependency that is down (database,
Redis, object storage, registry, Docker engine) or a bug. The workers retry those with backoff,
log their traceback, and only when the retries run out fail the row, saying the farm could not
do the work, never blaming the package.
"""


class UserFacingError(Exception):
    """The user's package, model or input is at fault; the message says what to fix."""


class FarmFault(Exception):
    """A dependency of the farm failed; `component` names it ("the registry", ...)."""

    def __init__(self, component: str, detail: str) -> None:
        super().__init__(f"{component}: {detail}")
        self.component = component


# The client library an exception comes from tells which dependency failed.
_COMPONENT_OF_LIBRARY = {
    "sqlalchemy": "the database",
    "psycopg": "the database",
    "redis": "Redis",
    "kombu": "Redis",
    "minio": "object storage",
    "urllib3": "object storage",  # the minio SDK's transport; docker's is wrapped by requests
    "httpx": "the registry",
    "httpcore": "the registry",
    "docker": "the Docker engine",
    "requests": "the Docker engine",
}


def component_of(error: BaseException) -> str | None:
    """The dependency behind a farm fault, following the chain of causes; None if unknown."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, FarmFault):
            return seen.component
        library = type(seen).__module__.split(".")[0]
        if library in _COMPONENT_OF_LIBRARY:
            return _COMPONENT_OF_LIBRARY[library]
        seen = seen.__cause__ or seen.__context__
    return None


def gave_up_message(what: str, error: BaseException) -> str:
    """The row's error once the farm's retries ran out: the farm's fault, in a sentence."""
    component = component_of(error)
    reason = f"{component} could not be reached" if component else "an internal error"
    return f"The farm could not finish this {what} ({reason}); try again later."

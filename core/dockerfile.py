"""A version's Dockerfile: rendered from core/Dockerfile.template with validated values, and
read back, by BuildKit's own parser (the `dockerfile` package), into the plan a builder
executes (workers/build/executor.py) — refusing every instruction and form the template does
not write, so that a mistake in the template can never build something else silently.

The forms, stage by stage:

    FROM <base> AS deps            COPY <folder>/ </path>/      RUN ["exec", "form"]
    FROM <base>                    COPY --from=deps </path>/ </same path>/  (exactly one)
                                   COPY <folder>/ </path>/      ENV K=v ...   USER <uid>:<gid>
                                   WORKDIR </path>              ENTRYPOINT ["exec", "form"]
"""

import re
import string
from dataclasses import dataclass, field
from pathlib import Path

from runner.protocol import MODEL_UID

TEMPLATE = Path(__file__).with_name("Dockerfile.template")
DEPS_STAGE = "deps"
# Each value put into the template must match its pattern in full: none can add a line, a
# word, a quote or a variable. None names a model or a version: equal contents make an equal
# Dockerfile, whoever's model it is.
_VALUE_PATTERNS = {
    # An image reference: [host[:port]/]path[:tag][@sha256:digest], lower-case path parts.
    "base": r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]{1,5})?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?",
    "uid": r"[1-9][0-9]{0,8}",
}
_CONTEXT_FOLDER = re.compile(r"[a-z][a-z0-9_-]*/")
_ABSOLUTE_FOLDER = re.compile(r"/(?:[a-z0-9_.-]+/)+")
_ABSOLUTE_PATH = re.compile(r"/[a-z0-9_./-]*")
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
_ENV_VALUE = re.compile(r"[A-Za-z0-9_./:=,+-]*")
_ARGUMENT = re.compile(r"[A-Za-z0-9_./:=,+-]+")
_USER = re.compile(r"([1-9][0-9]{0,8}):([1-9][0-9]{0,8})")


class DockerfileRefused(Exception):
    """The Dockerfile holds an instruction or a form the template never writes."""


def render(**values: str) -> str:
    if set(values) != set(_VALUE_PATTERNS):
        raise ValueError(f"{TEMPLATE.name} takes exactly {sorted(_VALUE_PATTERNS)}")
    for name, value in values.items():
        if not re.fullmatch(_VALUE_PATTERNS[name], value):
            raise ValueError(f"refusing to put {name}={value!r} into {TEMPLATE.name}")
    return string.Template(TEMPLATE.read_text()).substitute(values)


def for_base(base: str) -> str:
    """The Dockerfile of every version built over the image `base` (the farm's setting)."""
    return render(base=base, uid=str(MODEL_UID))


@dataclass(frozen=True)
class Copy:
    step: int  # the instruction's number, from 1, for the build log
    text: str  # the instruction as written
    source: str  # a folder of the context ("code/"), or of the dependency stage ("/opt/")
    destination: str  # an absolute folder ("/model/")
    from_stage: str | None = None


@dataclass(frozen=True)
class Instruction:
    step: int
    text: str


@dataclass
class Plan:
    """What a Dockerfile makes: the dependency stage's inputs and commands, then the model
    stage's layers and configuration, each with the instruction it came from."""

    base: str
    steps: int  # how many instructions
    deps_from: Instruction | None = None
    deps_copies: list[Copy] = field(default_factory=list)
    deps_runs: list[tuple[Instruction, list[str]]] = field(default_factory=list)
    model_from: Instruction | None = None
    copies: list[Copy] = field(default_factory=list)  # in order; the first from the deps stage
    config: list[tuple[Instruction, str, object]] = field(default_factory=list)  # (…, key, value)

    @property
    def deps_export(self) -> Copy:
        """The model stage's one copy out of the dependency stage."""
        return self.copies[0]


def parse(text: str, *, base: str) -> Plan:
    """The plan of a Dockerfile of the template's forms over `base`; DockerfileRefused naming
    the first instruction that is not one of them."""
    # Imported here, by the process that parses, never at import time: the parser is Go code
    # whose runtime starts with threads when it is loaded, and a process forked after that
    # (the build worker's pool child, forked by its main process) hangs in its next call.
    import dockerfile

    try:
        commands = dockerfile.parse_string(text)
    except dockerfile.GoParseError as error:
        raise DockerfileRefused(f"the Dockerfile does not parse: {error}") from None
    plan = Plan(base=base, steps=len(commands))
    for step, command in enumerate(commands, start=1):
        try:
            _add(plan, Instruction(step, command.original), command)
        except DockerfileRefused as error:
            raise DockerfileRefused(
                f"line {command.start_line} ({command.original!r}): {error}"
            ) from None
    _check_whole(plan)
    return plan


def _add(plan: Plan, here: Instruction, command) -> None:
    if command.heredocs:
        raise DockerfileRefused("heredocs are not a form the template writes")
    name, value, flags = command.cmd.upper(), list(command.value), list(command.flags)
    if name == "FROM":
        return _add_from(plan, here, value, flags)
    if plan.deps_from is None:
        raise DockerfileRefused("every instruction comes after a FROM")
    in_deps = plan.model_from is None
    if name == "COPY":
        return _add_copy(plan, here, value, flags, in_deps)
    if flags:
        raise DockerfileRefused(f"{name} takes no flags here")
    if in_deps and name == "RUN":
        plan.deps_runs.append((here, _exec_form(command)))
    elif not in_deps and name in _CONFIG_FORMS:
        plan.config.append((here, *_CONFIG_FORMS[name](command)))
    else:
        stage = "dependency" if in_deps else "model"
        raise DockerfileRefused(f"{name} is not an instruction of the {stage} stage")


def _add_from(plan: Plan, here: Instruction, value: list[str], flags: list[str]) -> None:
    if flags or value[0] != plan.base:
        raise DockerfileRefused(f"a stage is FROM the farm's base image {plan.base} only")
    if plan.deps_from is None and value[1:] == ["AS", DEPS_STAGE]:
        plan.deps_from = here
    elif plan.deps_from is not None and plan.model_from is None and len(value) == 1:
        plan.model_from = here
    else:
        raise DockerfileRefused(f"the stages are `FROM base AS {DEPS_STAGE}`, then `FROM base`")


def _add_copy(plan, here: Instruction, value: list[str], flags: list[str], in_deps) -> None:
    if len(value) != 2 or not _ABSOLUTE_FOLDER.fullmatch(value[1]):
        raise DockerfileRefused("COPY takes one source folder and an absolute folder")
    source, destination = value
    if flags == [f"--from={DEPS_STAGE}"] and not in_deps and not plan.copies:
        if source != destination:
            raise DockerfileRefused("a copy out of the dependency stage keeps its folder")
        plan.copies.append(Copy(here.step, here.text, source, destination, DEPS_STAGE))
    elif flags or not _CONTEXT_FOLDER.fullmatch(source) or (not in_deps and not plan.copies):
        raise DockerfileRefused(
            "COPY copies a folder of the context, except the model stage's first COPY, "
            f"--from={DEPS_STAGE}"
        )
    else:
        (plan.deps_copies if in_deps else plan.copies).append(
            Copy(here.step, here.text, source, destination)
        )


def _exec_form(command) -> list[str]:
    arguments = list(command.value)
    if not command.json or not arguments or not all(map(_ARGUMENT.fullmatch, arguments)):
        raise DockerfileRefused(f"{command.cmd} is in exec form (JSON) with plain arguments")
    return arguments


def _env(command) -> tuple[str, list[tuple[str, str]]]:
    pairs = list(zip(command.value[::2], command.value[1::2], strict=True))
    if not pairs or "=" not in command.original.split(maxsplit=2)[1]:
        raise DockerfileRefused("ENV sets NAME=value pairs")
    for name, value in pairs:
        if not _ENV_NAME.fullmatch(name) or not _ENV_VALUE.fullmatch(value):
            raise DockerfileRefused(f"ENV {name} is not a plain name and value")
    return "Env", pairs


def _user(command) -> tuple[str, str]:
    (user,) = command.value
    if not _USER.fullmatch(user):
        raise DockerfileRefused("USER is an unprivileged uid:gid (never root, never a name)")
    return "User", user


def _workdir(command) -> tuple[str, str]:
    (path,) = command.value
    if not _ABSOLUTE_PATH.fullmatch(path):
        raise DockerfileRefused("WORKDIR is an absolute path")
    return "WorkingDir", path


_CONFIG_FORMS = {
    "ENV": _env,
    "USER": _user,
    "WORKDIR": _workdir,
    "ENTRYPOINT": lambda command: ("Entrypoint", _exec_form(command)),
}


def _check_whole(plan: Plan) -> None:
    if plan.model_from is None or not plan.deps_runs or not plan.copies:
        raise DockerfileRefused(
            f"the Dockerfile has a dependency stage with a RUN, then a model stage whose first "
            f"COPY is --from={DEPS_STAGE}"
        )
    keys = [key for _, key, _ in plan.config]
    if sorted(set(keys)) != sorted(keys) or {"User", "Entrypoint"} - set(keys):
        raise DockerfileRefused("the model stage sets USER and ENTRYPOINT, each once")

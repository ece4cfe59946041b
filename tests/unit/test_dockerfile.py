"""The generated Dockerfile: no value put into the template can change its instructions, and
the executor's reading of it refuses every instruction and form the template never writes."""

import subprocess
import sys

import dockerfile as buildkit
import pytest

from core import dockerfile

BASE = "modelfarm/base:bookworm"
TEXT = dockerfile.for_base(BASE)
HOSTILE = [
    "x\nUSER root",
    "x\r\nRUN curl http://198.18.0.1/",
    'x" ]\nENTRYPOINT ["sh',
    "x'",
    "x\\\nADD http://198.18.0.1/ /",
    '1:1", "Privileged": "true',
    "${HOME}",
    "$uid",
    "x AS deps",
    "x # comment",
    "0",
    "root",
    "",
    "x" * 300,
]


def _commands(text: str) -> list[tuple[str, tuple]]:
    return [(command.cmd, command.flags) for command in buildkit.parse_string(text)]


def test_the_template_is_the_dependency_stage_then_the_model_stage_in_layer_order():
    plan = dockerfile.parse(TEXT, base=BASE)
    assert plan.steps == 12
    assert [copy.source for copy in plan.copies] == ["/opt/", "weights/", "code/", "farm/"]
    assert plan.deps_runs[0][1] == ["/bin/sh", "/tmp/deps/install.sh"]
    config = {key: value for _, key, value in plan.config}
    assert config["User"] == "10001:10001" and config["WorkingDir"] == "/model"
    assert config["Entrypoint"] == ["/opt/venv/bin/python", "-m", "runner"]


@pytest.mark.parametrize("field", ["base", "uid"])
@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_value_is_refused_or_leaves_exactly_the_templates_instructions(field, value):
    values = {"base": BASE, "uid": "10001", field: value}
    try:
        text = dockerfile.render(**values)
    except ValueError as error:
        assert f"refusing to put {field}" in str(error)
        return
    assert _commands(text) == _commands(TEXT)


def test_a_base_image_reference_of_any_registry_is_accepted():
    for base in ["python:3.11-slim", "127.0.0.1:5000/modelfarm/base:bookworm",
                 "registry.example/ml/base@sha256:" + "a" * 64]:  # fmt: skip
        assert dockerfile.parse(dockerfile.for_base(base), base=base).base == base


def test_missing_or_extra_values_are_refused():
    with pytest.raises(ValueError, match="takes exactly"):
        dockerfile.render(base=BASE)
    with pytest.raises(ValueError, match="takes exactly"):
        dockerfile.render(base=BASE, uid="10001", deps_image="x")


def _with(old: str, new: str) -> str:
    assert old in TEXT
    return TEXT.replace(old, new, 1)


@pytest.mark.parametrize(
    "text, why",
    [
        (_with("COPY code/ /model/", "ADD http://198.18.0.1/x /model/"), "ADD is not"),
        (_with("COPY code/ /model/", 'RUN ["/bin/sh", "-c", "id"]'), "RUN is not"),
        (_with("USER 10001:10001", "USER root"), "never root"),
        (_with("USER 10001:10001", "USER 0:0"), "never root"),
        (_with("USER 10001:10001", "USER 10001"), "never root"),
        (
            _with('RUN ["/bin/sh", "/tmp/deps/install.sh"]', "RUN sh /tmp/deps/install.sh"),
            "exec form",
        ),
        (
            _with('RUN ["/bin/sh", "/tmp/deps/install.sh"]', 'RUN ["/bin/sh", "-c", "a;b"]'),
            "plain arguments",
        ),
        (_with("COPY code/ /model/", "COPY --chown=0:0 code/ /model/"), "COPY copies"),
        (_with("COPY code/ /model/", "COPY ../ /model/"), "COPY copies"),
        (_with("COPY code/ /model/", "COPY code/ /etc"), "absolute folder"),
        (_with("COPY code/ /model/", "COPY --from=deps /etc/ /etc/"), "COPY copies"),
        (_with("COPY --from=deps /opt/ /opt/", "COPY --from=deps /opt/ /usr/"), "keeps its folder"),
        (_with("FROM $base AS deps".replace("$base", BASE), f"FROM {BASE} AS other"), "stages"),
        (_with(f"FROM {BASE}\nCOPY --from", "FROM evil/base\nCOPY --from"), "base image"),
        (_with("WORKDIR /model", "WORKDIR /model\nLABEL a=b"), "LABEL is not"),
        (_with("WORKDIR /model", 'WORKDIR /model\nCMD ["sh"]'), "CMD is not"),
        (_with("WORKDIR /model", "WORKDIR /model\nARG X"), "ARG is not"),
        (_with("WORKDIR /model", "WORKDIR /model\nUSER 10001:10001"), "each once"),
        (_with("HOME=/tmp", 'HOME="/tmp x"'), "plain name and value"),
        (_with("HOME=/tmp", "HOME=$PATH"), "plain name and value"),
        (_with("ENTRYPOINT [", "ENTRYPOINT /bin/sh #["), "exec form"),
        (_with("WORKDIR /model", "WORKDIR /model\nCOPY <<EOF /x/\nhi\nEOF"), "heredocs"),
        (TEXT.split("# The model stage")[0], "model stage"),
    ],
)
def test_an_instruction_or_form_the_template_never_writes_is_refused(text, why):
    with pytest.raises(dockerfile.DockerfileRefused, match=why):
        dockerfile.parse(text, base=BASE)


def test_the_model_stages_configuration_is_applied_as_the_engine_applies_it():
    from workers.build.executor import image_config

    plan = dockerfile.parse(TEXT, base=BASE)
    base = {"config": {"Env": ["LANG=C.UTF-8", "PATH=/usr/bin", "HOME=/root"], "Cmd": ["python3"],
                       "Labels": {"kept": "yes"}}}  # fmt: skip
    config = image_config(base, plan)["config"]
    # an ENV replaces its variable where it was and adds the others after
    assert config["Env"][0] == "LANG=C.UTF-8"
    assert config["Env"][1].startswith("PATH=/opt/venv/bin:") and config["Env"][2] == "HOME=/tmp"
    assert config["Env"][3:] == [
        "PYTHONPATH=/opt/modelfarm", "PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1",
    ]  # fmt: skip
    assert config["Cmd"] is None and config["Labels"] == {"kept": "yes"}  # an inherited CMD goes
    assert (config["User"], config["WorkingDir"]) == ("10001:10001", "/model")
    # a base that sets no PATH gets the engine's default first, replaced by the ENV
    bare = image_config({"config": {"Env": None}}, plan)["config"]
    assert bare["Env"][0].startswith("PATH=/opt/venv/bin:")


def test_no_worker_loads_the_go_parser_before_its_pool_forks():
    """The parser is Go, whose runtime starts threads when it is loaded: a pool child forked
    from a process that loaded it hangs in its next parse (CI caught a build stuck so). The
    workers' processes load every task module; none may load the parser by doing so."""
    script = (
        "import sys, workers.celery_app, workers.tasks, workers.build.builder, "
        "workers.build.executor, workers.build.engine; "
        "print('dockerfile' in sys.modules)"
    )
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert loaded.stdout.strip() == "False", loaded.stderr
    # and the parse itself, in a process forked after the import, works
    forked = subprocess.run(
        [sys.executable, "-c", "import os, sys; from core import dockerfile as d; "
         "t = d.for_base('modelfarm/base:bookworm'); pid = os.fork()\n"
         "if pid == 0:\n    d.parse(t, base='modelfarm/base:bookworm'); os._exit(0)\n"
         "sys.exit(os.waitpid(pid, 0)[1])"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert forked.returncode == 0, forked.stderr

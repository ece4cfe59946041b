"""Typed inputs: the runner's description of predict() (runner/inputs.py), the JSON Schema and
checks the farm makes of it (core/inputs.py), and the runner's real process called with them."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Literal

import pytest

from core import inputs
from modelfarm import Input
from runner import inputs as described
from runner.protocol import EXIT_BAD_SIGNATURE, EXIT_OK, SELF_TEST_FLAG, SERVE_FLAG, encode_header
from tests.unit.test_runner_protocol import LIMITS, _model_env, _read_frame, _run_runner
from tests.utils import ROOT
from workers.run import failures
from workers.run.outputs import inline_result, read_archive, unpack_outputs
from workers.run.request import RunnerRequest

TYPED_MODEL = ROOT / "tests" / "integration" / "models" / "typed"


def _typed_model():
    """The typed test model's predict (one input of each kind)."""
    spec = importlib.util.spec_from_file_location("typed_model", TYPED_MODEL / "predict.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Predictor().predict


typed = _typed_model()


def test_every_supported_type_and_constraint_is_described():
    description = described.describe(typed)
    assert description["legacy"] is False and description["output_dir"] is True
    assert description["inputs"] == [
        {"name": "image", "type": "file"},
        {"name": "threshold", "type": "float", "description": "Scores below it are dropped.",
         "ge": 0, "le": 1, "default": 0.5},
        {"name": "top_k", "type": "int", "ge": 1, "le": 10, "default": 3},
        {"name": "mode", "type": "str", "choices": ["fast", "exact"], "default": "fast"},
        {"name": "label", "type": "str", "min_length": 1, "max_length": 16, "regex": "[a-z]+",
         "default": "none"},
        {"name": "verbose", "type": "bool", "default": False},
    ]  # fmt: skip


@pytest.mark.parametrize(
    "signature",
    ["input_path, output_dir", "input_path: Path, output_dir: Path", "x, y"],
)
def test_the_old_contract_is_one_file_named_input(signature):
    namespace = {"Path": Path}
    exec(f"def predict({signature}):\n    pass\n", namespace)
    assert described.describe(namespace["predict"])["inputs"] == [{"name": "input", "type": "file"}]


def test_a_typed_file_and_the_output_folder_are_not_the_old_contract():
    def predict(image: Path, output_dir: Path):
        pass

    assert described.describe(predict)["inputs"] == [{"name": "image", "type": "file"}]


@pytest.mark.parametrize(
    "parameters, words",
    [
        ("image: Path, extra", "parameter 'extra' has no annotation"),
        ("items: list", "parameter 'items' has the type <class 'list'>"),
        ("image: Path, *rest: str", "parameter 'rest': declare each input as a named"),
        ("t: float = Input(2, le=1)", "parameter 't': its default 2 breaks le=1"),
        ("n: int = Input(0.5)", "parameter 'n': its default 0.5 is not a int"),
        ("b: bool = 1", "parameter 'b': its default 1 is not a bool"),
        ("s: str = Input(ge=1)", "parameter 's': ge does not apply to a str"),
        ("m: Literal['a', 1]", "parameter 'm': give a Literal's choices as all str"),
        ("m: Literal['a', 'b'] = 'c'", "parameter 'm': its default 'c' is not one of"),
        ("s: str = Input(regex='[')", "parameter 's': regex does not compile"),
        ("s: str = Input('ABC', regex='[a-z]+')", "parameter 's': its default 'ABC' breaks regex"),
        ("image: Path = Path('x')", "parameter 'image': its default cannot be given"),
    ],
)
def test_a_signature_that_cannot_be_described_names_its_parameter(parameters, words):
    namespace = {"Path": Path, "Input": Input, "Literal": Literal}
    exec(f"def predict({parameters}):\n    pass\n", namespace)
    with pytest.raises(described.SignatureError) as raised:
        described.describe(namespace["predict"])
    assert words in str(raised.value)


def test_a_bad_signature_fails_the_self_test_with_its_own_exit_code(tmp_path):
    model = "from modelfarm import Input\ndef predict(x: float = Input(3, le=1)):\n    pass\n"
    result = _run_runner(tmp_path, model, SELF_TEST_FLAG)
    assert result.exit_code == EXIT_BAD_SIGNATURE
    assert failures.error_record(result.stderr_tail)["message"] == (
        "parameter 'x': its default 3 breaks le=1"
    )


SCHEMA = inputs.json_schema(described.describe(typed))
IMAGE = {"name": "a.png", "data": "aGVsbG8="}


def test_the_json_schema_requires_what_has_no_default_and_nothing_else():
    assert SCHEMA["required"] == ["image"] and SCHEMA["additionalProperties"] is False
    assert SCHEMA["properties"]["threshold"] == {
        "title": "threshold", "x-order": 1, "type": "number", "minimum": 0, "maximum": 1,
        "default": 0.5, "description": "Scores below it are dropped.",
    }  # fmt: skip
    assert SCHEMA["properties"]["mode"]["enum"] == ["fast", "exact"]
    assert SCHEMA["properties"]["label"]["pattern"] == "^(?:[a-z]+)$"
    assert inputs.file_inputs(SCHEMA) == ["image"] and inputs.only_file_input(SCHEMA) == "image"


def test_defaults_are_applied_to_what_was_not_given():
    assert inputs.checked(SCHEMA, {"image": IMAGE, "top_k": 7}) == {
        "threshold": 0.5, "top_k": 7, "mode": "fast", "label": "none", "verbose": False,
        "image": IMAGE,
    }  # fmt: skip


@pytest.mark.parametrize(
    "given, words",
    [
        ({}, "inputs: 'image' is a required property"),
        ({"image": IMAGE, "colour": 1}, "('colour' was unexpected)"),
        ({"image": IMAGE, "threshold": "high"}, "inputs.threshold: 'high' is not of type 'number'"),
        ({"image": IMAGE, "top_k": True}, "inputs.top_k: True is not of type 'integer'"),
        ({"image": IMAGE, "top_k": 2.5}, "inputs.top_k: 2.5 is not of type 'integer'"),
        ({"image": IMAGE, "threshold": 1.5}, "inputs.threshold: 1.5 is greater than the maximum"),
        ({"image": IMAGE, "top_k": 0}, "inputs.top_k: 0 is less than the minimum of 1"),
        ({"image": IMAGE, "mode": "slow"}, "inputs.mode: 'slow' is not one of ['fast', 'exact']"),
        ({"image": IMAGE, "label": ""}, "inputs.label: '' should be non-empty"),
        ({"image": IMAGE, "label": "a" * 17}, f"inputs.label: '{'a' * 17}' is too long"),
        ({"image": IMAGE, "label": "ab1"}, "inputs.label: 'ab1' does not match"),
        ({"image": IMAGE, "verbose": "yes"}, "inputs.verbose: 'yes' is not of type 'boolean'"),
        ({"image": "a.png"}, "inputs.image: give a file as"),
        ({"image": {"name": "../x", "data": ""}}, "inputs.image: give a file as"),
        ({"image": {"upload": False}}, "inputs.image: give a file as"),
    ],
)
def test_inputs_that_break_a_rule_are_refused_naming_the_input_and_the_rule(given, words):
    with pytest.raises(inputs.InputError) as raised:
        inputs.checked(SCHEMA, given)
    assert words in str(raised.value)


def test_every_problem_is_named_at_once_and_long_values_are_cut():
    with pytest.raises(inputs.InputError) as raised:
        inputs.checked(SCHEMA, {"image": IMAGE, "top_k": 0, "label": "x" * 10_000})
    message = str(raised.value)
    assert "inputs.top_k:" in message and "inputs.label:" in message and len(message) < 600


def test_values_too_long_for_one_argument_are_refused():
    schema = inputs.json_schema({"inputs": [{"name": "text", "type": "str"}]})
    with pytest.raises(inputs.InputError) as raised:
        inputs.checked(schema, {"text": "x" * (inputs.MAX_VALUES_BYTES + 1)})
    assert "send long text as a file input" in str(raised.value)


ECHO_TYPED = (
    "from pathlib import Path\n"
    "from typing import Literal\n"
    "from modelfarm import Input\n\n"
    "class Predictor:\n"
    "    def predict(self, image: Path, mask: Path, threshold: float = Input(0.5, le=1),\n"
    "                mode: Literal['fast', 'exact'] = 'fast', output_dir: Path = None):\n"
    "        (output_dir / 'both.bin').write_bytes(image.read_bytes() + mask.read_bytes())\n"
    "        return {'image': str(image), 'mask': str(mask), 'threshold': threshold,\n"
    "                'type': type(threshold).__name__, 'mode': mode}\n"
)
REQUEST = {
    "values": {"threshold": 1, "mode": "exact"},
    "files": [{"input": "image", "name": "a.png", "size": 3},
              {"input": "mask", "name": "a.png", "size": 2}],
}  # fmt: skip


def test_a_typed_request_calls_predict_with_its_files_values_and_defaults(tmp_path):
    result = _run_runner(tmp_path, ECHO_TYPED, "--request", json.dumps(REQUEST), stdin=b"abcde")
    assert result.exit_code == EXIT_OK, result.stderr_tail
    files = unpack_outputs(result.stdout, LIMITS.output_mb * 1024**2)
    assert files["both.bin"] == b"abcde"
    inputs_dir = tmp_path / "input"
    assert inline_result(files) == {
        "image": str(inputs_dir / "image" / "a.png"), "mask": str(inputs_dir / "mask" / "a.png"),
        "threshold": 1.0, "type": "float", "mode": "exact",
    }  # fmt: skip


def test_serve_mode_takes_typed_requests_and_one_unnamed_file(tmp_path):
    model = (
        "from pathlib import Path\nfrom modelfarm import Input\n"
        "def predict(image: Path, k: int = 2):\n"
        "    return {'name': image.name, 'data': image.read_text(), 'k': k}\n"
    )
    runner = subprocess.Popen(
        [sys.executable, "-m", "runner", SERVE_FLAG], env=_model_env(tmp_path, model),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    typed_request = {"values": {"k": 5}, "files": [{"input": "image", "name": "b.txt", "size": 3}]}
    runner.stdin.write(encode_header(**typed_request, size=3) + b"one")
    runner.stdin.write(encode_header(input_name="c.txt", size=3) + b"two")  # the only file input
    runner.stdin.close()
    answers = []
    for _ in range(2):
        _read_frame(runner.stdout)
        header, archive = _read_frame(runner.stdout)
        assert header["exit"] == EXIT_OK, header
        answers.append(inline_result(read_archive(archive, LIMITS.output_mb * 1024**2)))
    assert runner.wait(timeout=30) == EXIT_OK
    assert answers == [
        {"name": "b.txt", "data": "one", "k": 5},
        {"name": "c.txt", "data": "two", "k": 2},
    ]


def test_the_most_values_a_job_may_have_reach_the_runner_both_ways(tmp_path):
    """As the one argument of a one-shot runner, and in a warm runner's frame header."""
    model = "def predict(text: str):\n    return {'length': len(text)}\n"
    text = "\x01" * ((inputs.MAX_VALUES_BYTES - 20) // 6)  # 6 bytes each as JSON
    schema = inputs.json_schema({"inputs": [{"name": "text", "type": "str"}]})
    assert inputs.checked(schema, {"text": text}) == {"text": text}
    request = RunnerRequest.typed({"text": text}, [])
    assert len(request.command()[1]) > 60_000
    (tmp_path / "cold").mkdir()
    cold = _run_runner(tmp_path / "cold", model, *request.command())
    assert cold.exit_code == EXIT_OK, cold.stderr_tail
    assert inline_result(unpack_outputs(cold.stdout, 1024**2)) == {"length": len(text)}
    (tmp_path / "warm").mkdir()
    runner = subprocess.Popen(
        [sys.executable, "-m", "runner", SERVE_FLAG], env=_model_env(tmp_path / "warm", model),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    runner.stdin.write(request.header(more=False))
    runner.stdin.close()
    _read_frame(runner.stdout)
    header, archive = _read_frame(runner.stdout)
    assert runner.wait(timeout=30) == EXIT_OK and header["exit"] == EXIT_OK, header
    assert inline_result(read_archive(archive, 1024**2)) == {"length": len(text)}

"""Typed inputs: what a model's predict() declares, described for the farm, and the call that
gives it its inputs. Standard library only: it runs inside every model image, where
`from modelfarm import Input` is this module's Input.

    def predict(self, image: Path, threshold: float = Input(0.5, ge=0, le=1),
                mode: Literal["fast", "exact"] = "fast", output_dir: Path = None) -> dict:

Each parameter is an input: Path (a file), str, int, float, bool or Literal[...] (choices). A
parameter named output_dir is not an input: it receives the output folder. The old contract,
predict(input_path, output_dir), two parameters without defaults whose first is unannotated or
named input_path, is one file input named "input".
"""

import inspect
import re
import typing
from pathlib import Path

OUTPUT_DIR_PARAMETER = "output_dir"
LEGACY_INPUT = "input"
FILE = "file"
TYPES = {Path: FILE, str: "str", int: "int", float: "float", bool: "bool"}
# Which types each constraint applies to.
CONSTRAINTS = {
    "ge": ("int", "float"), "le": ("int", "float"),
    "min_length": ("str",), "max_length": ("str",), "regex": ("str",),
}  # fmt: skip
_REQUIRED = inspect.Parameter.empty


class Input:
    """An input's default, description and constraints, given as the parameter's default."""

    def __init__(
        self, default: object = _REQUIRED, *, description: str | None = None,
        ge: float | None = None, le: float | None = None, min_length: int | None = None,
        max_length: int | None = None, regex: str | None = None,
    ) -> None:  # fmt: skip
        self.default, self.description = default, description
        self.constraints = {
            name: value
            for name, value in dict(
                ge=ge, le=le, min_length=min_length, max_length=max_length, regex=regex
            ).items()
            if value is not None
        }


class SignatureError(Exception):
    """A predict() whose inputs cannot be described; the message names the parameter."""


def describe(predict) -> dict:
    """{"legacy": bool, "inputs": [one dict per input], "output_dir": bool}, and "stream":
    true for a predict that yields its output (a generator): each input's name, type and, when
    declared, default, description, choices and constraints; JSON-ready."""
    try:
        parameters = list(inspect.signature(predict, eval_str=True).parameters.values())
    except (NameError, TypeError, ValueError) as error:
        raise SignatureError(f"predict's annotations cannot be read: {error}") from None
    stream = {"stream": True} if inspect.isgeneratorfunction(predict) else {}
    if _is_legacy(parameters):
        return {"legacy": True, "inputs": [{"name": LEGACY_INPUT, "type": FILE}], **stream}
    inputs = [_describe(p) for p in parameters if p.name != OUTPUT_DIR_PARAMETER]
    output_dir = any(p.name == OUTPUT_DIR_PARAMETER for p in parameters)
    return {"legacy": False, "inputs": inputs, "output_dir": output_dir, **stream}


def _is_legacy(parameters: list[inspect.Parameter]) -> bool:
    if len(parameters) != 2 or any(p.default is not _REQUIRED for p in parameters):
        return False
    first = parameters[0]
    return first.annotation is _REQUIRED or first.name == "input_path"


def _describe(parameter: inspect.Parameter) -> dict:
    name = parameter.name
    if parameter.kind not in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
        raise SignatureError(f"parameter {name!r}: declare each input as a named parameter")
    declared = parameter.default if isinstance(parameter.default, Input) else None
    declared = declared or Input(parameter.default)
    described = {"name": name, **_type_of(name, parameter.annotation)}
    if declared.description is not None:
        described["description"] = str(declared.description)
    for constraint, value in declared.constraints.items():
        if described["type"] not in CONSTRAINTS[constraint]:
            raise SignatureError(
                f"parameter {name!r}: {constraint} does not apply to a {described['type']}"
            )
        described[constraint] = value
    if "regex" in described:
        try:
            re.compile(described["regex"])
        except re.error as error:
            raise SignatureError(f"parameter {name!r}: regex does not compile: {error}") from None
    if declared.default is not _REQUIRED:
        described["default"] = declared.default
        _check_default(described)
    return described


def _type_of(name: str, annotation: object) -> dict:
    if annotation in TYPES:
        return {"type": TYPES[annotation]}
    if typing.get_origin(annotation) is typing.Literal:
        choices = list(typing.get_args(annotation))
        kinds = {TYPES.get(type(choice)) for choice in choices}
        if len(kinds) == 1 and kinds <= {"str", "int"}:
            return {"type": kinds.pop(), "choices": choices}
        raise SignatureError(f"parameter {name!r}: give a Literal's choices as all str or all int")
    shown = "no annotation" if annotation is _REQUIRED else f"the type {annotation!r}"
    raise SignatureError(
        f"parameter {name!r} has {shown}: annotate it as Path, str, int, float, bool or "
        "Literal[...]"
    )


def _check_default(described: dict) -> None:
    """A default must be an acceptable value of its own input."""
    problem = violation(described, described["default"])
    if problem:
        raise SignatureError(f"parameter {described['name']!r}: its default {problem}")


def violation(described: dict, value: object) -> str | None:
    """What is wrong with a value for an input, as the end of a sentence; None if nothing."""
    kind = described["type"]
    if kind == FILE:
        return "cannot be given: a file input has no default"
    accepted = (int, float) if kind == "float" else {v: k for k, v in TYPES.items()}[kind]
    if isinstance(value, bool) != (kind == "bool") or not isinstance(value, accepted):
        return f"{value!r} is not a {kind}"
    if "choices" in described and value not in described["choices"]:
        return f"{value!r} is not one of {described['choices']}"
    limits = {
        "ge": lambda bound: value >= bound, "le": lambda bound: value <= bound,
        "min_length": lambda bound: len(value) >= bound,
        "max_length": lambda bound: len(value) <= bound,
        "regex": lambda pattern: re.fullmatch(pattern, value) is not None,
    }  # fmt: skip
    for constraint, holds in limits.items():
        if constraint in described and not holds(described[constraint]):
            return f"{value!r} breaks {constraint}={described[constraint]!r}"
    return None


def call(predict, description: dict, files: dict[str, Path], values: dict, output_dir: Path):
    """predict() called with its inputs (the farm checked them), defaults for those not given
    and, when it takes it, the output folder. A file given for no input (None) is for the
    model's only file input."""
    if description["legacy"]:
        (input_path,) = files.values()
        return predict(input_path, output_dir)
    if None in files:
        named = [each["name"] for each in description["inputs"] if each["type"] == FILE]
        if len(named) != 1:
            raise TypeError(f"one file was sent, but predict's file inputs are {named}")
        files = {named[0]: files[None]}
    declared = description["inputs"]
    arguments = {each["name"]: each["default"] for each in declared if "default" in each}
    arguments.update(values)
    arguments.update(files)
    for each in declared:
        if each["type"] == "float" and isinstance(arguments.get(each["name"]), int):
            arguments[each["name"]] = float(arguments[each["name"]])
    if description["output_dir"]:
        arguments[OUTPUT_DIR_PARAMETER] = output_dir
    return predict(**arguments)

"""What one prediction sends the runner: the request's fields (runner/protocol.py) and its
payload, the input files' bytes one after another, each in memory or in a file."""

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.inputs import is_file
from runner import protocol

Data = bytes | Path


@dataclass(frozen=True)
class RunnerRequest:
    fields: dict
    parts: tuple[Data, ...]

    @classmethod
    def of_file(cls, name: str, data: Data) -> "RunnerRequest":
        """One file for the model's only file input, seen under `name`: what every runner
        understands, those of images built before typed inputs too."""
        return cls({protocol.REQUEST_INPUT_NAME: name}, (data,))

    @classmethod
    def typed(cls, values: dict, files: list[tuple[str, str, Data]]) -> "RunnerRequest":
        """Values, and files as (input, file name, data)."""
        if not values and len(files) == 1:
            return cls.of_file(files[0][1], files[0][2])
        specs = [{"input": put, "name": name, "size": _size(data)} for put, name, data in files]
        fields = {protocol.REQUEST_VALUES: values, protocol.REQUEST_FILES: specs}
        return cls(fields, tuple(data for *_, data in files))

    @classmethod
    def of_inputs(cls, stored: dict, data_of: Callable[[str, dict], Data]) -> "RunnerRequest":
        """A job's or a batch item's inputs as stored (core/inputs.py), each file's data from
        data_of(input name, the stored file)."""
        values = {name: value for name, value in stored.items() if not is_file(value)}
        files = [(name, v["name"], data_of(name, v)) for name, v in stored.items() if is_file(v)]
        return cls.typed(values, files)

    @property
    def size(self) -> int:
        return sum(_size(part) for part in self.parts)

    def command(self) -> list[str]:
        """The runner's arguments for this request in a one-shot container."""
        if protocol.REQUEST_INPUT_NAME in self.fields:
            return [protocol.INPUT_NAME_FLAG, self.fields[protocol.REQUEST_INPUT_NAME]]
        return [protocol.REQUEST_FLAG, json.dumps(self.fields)]

    def header(self, *, more: bool) -> bytes:
        """Its frame header for a warm container; `more`: others follow at once."""
        return protocol.encode_header(**self.fields, size=self.size, more=more)


def _size(data: Data) -> int:
    return len(data) if isinstance(data, bytes) else data.stat().st_size

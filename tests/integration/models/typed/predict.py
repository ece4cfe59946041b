"""A typed model for the tests: one file input and one input of each other kind, echoed back
with the Python type each arrived as."""

from pathlib import Path
from typing import Literal

from modelfarm import Input


class Predictor:
    def setup(self) -> None:
        self.calls = 0

    def predict(
        self,
        image: Path,
        threshold: float = Input(0.5, description="Scores below it are dropped.", ge=0, le=1),
        top_k: int = Input(3, ge=1, le=10),
        mode: Literal["fast", "exact"] = "fast",
        label: str = Input("none", min_length=1, max_length=16, regex="[a-z]+"),
        verbose: bool = False,
        output_dir: Path = None,
    ) -> dict:
        self.calls += 1
        (output_dir / "image.copy").write_bytes(image.read_bytes())
        values = {"threshold": threshold, "top_k": top_k, "mode": mode, "label": label,
                  "verbose": verbose}  # fmt: skip
        return {
            "image": image.name, "size": image.stat().st_size,
            "values": values, "types": {k: type(v).__name__ for k, v in values.items()},
        }  # fmt: skip

"""The smallest model package: no requirements, returns facts about its input."""

import hashlib
from pathlib import Path


def predict(input_path: Path, output_dir: Path) -> dict:
    data = input_path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    (output_dir / "echo.txt").write_text(f"{len(data)} bytes, sha256 {digest}\n")
    return {"size": len(data), "sha256": digest}

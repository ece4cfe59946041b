"""Packs a model folder into a ZIP, byte for byte the same each time for the same files
(modelfarm/packing.py says what it leaves out).

    python scripts/pack.py examples/digits-onnx OUT.zip
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from modelfarm.packing import pack  # noqa: E402

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Pack a model folder into a ZIP.")
    parser.add_argument("folder", type=Path)
    parser.add_argument("target", type=Path)
    arguments = parser.parse_args()
    arguments.target.parent.mkdir(parents=True, exist_ok=True)
    packed = pack(arguments.folder, arguments.target)
    print(f"packed {arguments.target}: {', '.join(packed.names)}")

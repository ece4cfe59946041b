"""The example packages themselves: training is reproducible, packing is deterministic."""

import json
import subprocess
import sys
import zipfile

from tests.utils import ROOT

DIGITS = ROOT / "examples" / "digits-onnx"


def test_training_reaches_high_accuracy_and_the_onnx_model_agrees(tmp_path):
    done = subprocess.run(
        [sys.executable, DIGITS / "train.py", "--out", tmp_path],
        capture_output=True, text=True, check=True, timeout=600,
    )  # fmt: skip
    accuracy = float(done.stdout.split("test accuracy:")[1])
    assert accuracy >= 0.95
    labels = json.loads((tmp_path / "samples" / "labels.json").read_text())
    assert labels == json.loads((DIGITS / "samples" / "labels.json").read_text())
    sys.path.insert(0, str(DIGITS))
    try:
        import predict
    finally:
        sys.path.remove(str(DIGITS))
    predict.MODEL = tmp_path / "model.onnx"
    predictor = predict.Predictor()
    predictor.setup()
    for name, label in labels.items():
        result = predictor.predict(image=tmp_path / "samples" / name, top_k=3, output_dir=tmp_path)
        assert result["label"] == label


def test_packing_twice_gives_the_same_bytes_without_author_only_files(tmp_path):
    script = ROOT / "scripts" / "pack.py"
    for name in ("a.zip", "b.zip"):
        subprocess.run([sys.executable, script, DIGITS, tmp_path / name], check=True)
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()

    names = zipfile.ZipFile(tmp_path / "a.zip").namelist()
    assert names == ["model.onnx", "modelfarm.yaml", "predict.py", "requirements.txt"]


def test_packing_keeps_a_files_executable_bit_and_nothing_else_of_its_mode(tmp_path):
    from modelfarm.packing import pack

    (tmp_path / "predict.py").write_text("def predict(input_path, output_dir): ...\n")
    (tmp_path / "tool.sh").write_text("#!/bin/sh\n")
    (tmp_path / "tool.sh").chmod(0o750)
    (tmp_path / "predict.py").chmod(0o600)
    pack(tmp_path, tmp_path / "package.zip")
    modes = {
        e.filename: e.external_attr >> 16
        for e in zipfile.ZipFile(tmp_path / "package.zip").infolist()
    }
    assert modes == {"predict.py": 0o644, "tool.sh": 0o755}


def test_packing_stores_big_files_and_deflates_the_rest(tmp_path):
    from modelfarm.packing import STORE_ABOVE, pack

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "predict.py").write_text("def predict(): ...\n" * 100)
    (folder / "weights.bin").write_bytes(b"\0" * (STORE_ABOVE + 1))
    pack(folder, tmp_path / "package.zip")
    with zipfile.ZipFile(tmp_path / "package.zip") as package:
        kinds = {entry.filename: entry.compress_type for entry in package.infolist()}
        assert package.read("weights.bin") == b"\0" * (STORE_ABOVE + 1)
    assert kinds == {"predict.py": zipfile.ZIP_DEFLATED, "weights.bin": zipfile.ZIP_STORED}

"""Classifies a PNG of a handwritten digit with the ONNX model in this package."""

import csv
from pathlib import Path

import numpy as np
import onnxruntime
from PIL import Image

MODEL = Path(__file__).with_name("model.onnx")


class Predictor:
    def setup(self) -> None:
        self.session = onnxruntime.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def predict(self, input_path: Path, output_dir: Path) -> dict:
        features = to_features(Image.open(input_path))
        label, probabilities = self.session.run(None, {self.input_name: features})
        by_digit = {str(digit): round(float(p), 6) for digit, p in enumerate(probabilities[0])}
        with (output_dir / "probabilities.csv").open("w", newline="") as sink:
            writer = csv.writer(sink)
            writer.writerow(["digit", "probability"])
            writer.writerows(by_digit.items())
        return {"label": int(label[0]), "probabilities": by_digit}


def to_features(picture: Image.Image) -> np.ndarray:
    """Any image -> the 8x8, 0..16, light-ink-on-dark grid the model was trained on."""
    grey = np.asarray(picture.convert("L").resize((8, 8), Image.BOX), dtype=np.float32)
    if grey.mean() > 127:  # dark ink on a light background: invert
        grey = 255 - grey
    return (grey * (16 / 255)).reshape(1, 64)

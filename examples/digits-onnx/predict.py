"""Classifies a PNG of a handwritten digit with the ONNX model in this package: the digit, and
the `top_k` most likely ones with their probabilities."""

import csv
from pathlib import Path

import numpy as np
import onnxruntime
from PIL import Image

from modelfarm import Input

MODEL = Path(__file__).with_name("model.onnx")


class Predictor:
    def setup(self) -> None:
        self.session = onnxruntime.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def predict(
        self,
        image: Path,
        top_k: int = Input(3, ge=1, le=10, description="How many likely digits to list."),
        output_dir: Path = None,
    ) -> dict:
        features = to_features(Image.open(image))
        label, probabilities = self.session.run(None, {self.input_name: features})
        by_digit = {str(digit): round(float(p), 6) for digit, p in enumerate(probabilities[0])}
        with (output_dir / "probabilities.csv").open("w", newline="") as sink:
            writer = csv.writer(sink)
            writer.writerow(["digit", "probability"])
            writer.writerows(by_digit.items())
        top = sorted(by_digit.items(), key=lambda item: item[1], reverse=True)[:top_k]
        return {
            "label": int(label[0]), "probabilities": by_digit,
            "top": [{"digit": int(digit), "probability": p} for digit, p in top],
        }  # fmt: skip


def to_features(picture: Image.Image) -> np.ndarray:
    """Any image -> the 8x8, 0..16, light-ink-on-dark grid the model was trained on."""
    grey = np.asarray(picture.convert("L").resize((8, 8), Image.BOX), dtype=np.float32)
    if grey.mean() > 127:  # dark ink on a light background: invert
        grey = 255 - grey
    return (grey * (16 / 255)).reshape(1, 64)

"""Trains the digits classifier and exports it to ONNX, with sample PNGs from held-out digits.

    python train.py [--out DIR]

Uses the digits data set that ships with scikit-learn (8x8 grey images, values 0..16), so
nothing is downloaded. The seed is fixed: the same run gives the same model and samples.
"""

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image
from skl2onnx import to_onnx
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

SEED = 0
SAMPLES = 6
SAMPLE_SIZE = 64  # pixels a side: samples are upscaled like a real photo of a digit


def train(out: Path) -> float:
    digits = load_digits()
    features = digits.data.astype(np.float32)
    train_x, test_x, train_y, test_y = train_test_split(
        features, digits.target, test_size=0.25, random_state=SEED, stratify=digits.target
    )
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    classifier.fit(train_x, train_y)
    accuracy = float(classifier.score(test_x, test_y))
    onnx_model = to_onnx(classifier, train_x[:1], options={"zipmap": False}, target_opset=17)
    (out / "model.onnx").write_bytes(onnx_model.SerializeToString())
    write_samples(out / "samples", test_x, test_y)
    return accuracy


def write_samples(folder: Path, images: np.ndarray, labels: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    truth = {}
    for index in range(SAMPLES):
        grey = (images[index].reshape(8, 8) * (255 / 16)).astype(np.uint8)
        picture = Image.fromarray(grey, mode="L").resize((SAMPLE_SIZE, SAMPLE_SIZE), Image.NEAREST)
        name = f"digit-{index}.png"
        picture.save(folder / name)
        truth[name] = int(labels[index])
    (folder / "labels.json").write_text(json.dumps(truth, indent=1) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    arguments = parser.parse_args()
    print(f"test accuracy: {train(arguments.out):.4f}")

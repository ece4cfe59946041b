"""A model for the warm-sandbox tests: it remembers what it has seen and counts its setups, and
misbehaves on request (the input says how)."""

import os
import threading
import time

SEEN: list[str] = []
SETUPS: list[int] = []


class Predictor:
    def setup(self):
        SETUPS.append(1)

    def predict(self, input_path, output_dir):
        data = input_path.read_bytes().decode()
        SEEN.append(data)
        if data == "hang":
            time.sleep(600)
        if data == "slow":
            time.sleep(3)
        if data == "raise":
            raise ValueError("asked to fail")
        if data == "oom":
            hog = bytearray(400 * 1024 * 1024)
            hog[::4096] = b"x" * len(hog[::4096])
        if data == "garbage":
            os.write(3, b"not a frame of the protocol\n")  # the runner's reply channel
            time.sleep(2)
        if data == "late":

            def write_late():
                time.sleep(0.5)
                (output_dir / "late.txt").write_text("written after predict returned")

            threading.Thread(target=write_late).start()
        (output_dir / "out.txt").write_text(data)
        return {"setups": len(SETUPS), "seen": SEEN}

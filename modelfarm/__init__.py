"""modelfarm for a model's author: `from modelfarm import Input` declares a typed input of
predict() (runner/inputs.py). This file is standard library only, since every model image holds
it, beside the runner, so that a predict.py runs the same there and on the author's machine."""

from runner.inputs import Input

__all__ = ["Input"]

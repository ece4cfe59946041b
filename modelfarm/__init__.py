"""modelfarm for a model's author: `from modelfarm import Input` declares a typed input of
predict() (runner/inputs.py); and, on the author's machine, `modelfarm.Client` (client.py) and
the `modelfarm` command (cli.py). This file is standard library only, since every model image
holds it, beside the runner, so that a predict.py runs the same there and on the author's
machine; the client, which needs httpx, is imported only when asked for."""

from runner.inputs import Input

__all__ = ["ApiError", "Client", "Input"]


def __getattr__(name: str):
    if name in ("ApiError", "Client"):
        from modelfarm import client

        return getattr(client, name)
    raise AttributeError(f"module 'modelfarm' has no attribute {name!r}")

"""Code that runs inside every model image (standard library only). See runner/protocol.py."""

"""Code that runs inside every model image (standard library only). See runner/__main__.py."""

# Part of every image's content key: bump it when the runner's behaviour changes.
VERSION = "1"

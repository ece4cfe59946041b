"""The run pipeline: a READY image, sandboxed, on a job's input."""

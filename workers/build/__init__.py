"""The build pipeline: package ZIP -> validated -> Dockerfile -> image in the registry."""

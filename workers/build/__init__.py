"""The build pipeline: package ZIP -> validated -> smoke-tested -> image put together."""

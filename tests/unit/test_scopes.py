"""Which scope an API token needs for each route: reads, builds, runs; none for token routes."""

import pytest

from api.security import Scope, required_scope


@pytest.mark.parametrize(
    "method, path, scope",
    [
        ("GET", "/api/models", Scope.READ),
        ("GET", "/api/jobs/{job_id}/outputs", Scope.READ),
        ("POST", "/api/models", Scope.BUILD),
        ("POST", "/api/models/{model_id}/versions", Scope.BUILD),
        ("PUT", "/api/models/{model_id}/aliases/{alias}", Scope.BUILD),
        ("POST", "/api/versions/{version_id}/build", Scope.BUILD),
        ("POST", "/api/jobs", Scope.RUN),
        ("POST", "/api/jobs/{job_id}/cancel", Scope.RUN),
        ("POST", "/api/versions/{version_id}/warm", Scope.RUN),
        ("POST", "/api/tokens", None),
        ("GET", "/api/tokens", None),
        ("DELETE", "/api/tokens/{token_id}", None),
    ],
)
def test_each_route_family_needs_its_scope(method, path, scope):
    assert required_scope(method, path) == scope

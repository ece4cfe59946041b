"""The OpenAPI page (/docs), its Swagger UI served by the farm itself from web/node_modules
(scripts/setup.sh installs it from the npm registry): a farm on a private network has no CDN,
and FastAPI's default page, whose script and style come from one, is blank there. Its start-up
is a script file too (api/static/docs.js), not FastAPI's inline one, which the farm's
Content-Security-Policy (api/security_headers.py) would block."""

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

VENDOR = Path(__file__).resolve().parents[2] / "web" / "node_modules"
SWAGGER_UI = "/static/vendor/swagger-ui"
OAUTH2_REDIRECT = "/docs/oauth2-redirect"

router = APIRouter(include_in_schema=False)
PAGE = {
    "swagger_ui": SWAGGER_UI,
    "openapi_url": "/openapi.json",
    "oauth2_redirect": OAUTH2_REDIRECT,
}
templates = Jinja2Templates(directory=Path(__file__).resolve().parent.parent / "templates")


@router.get("/docs")
async def docs(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(request, "docs.html", PAGE)


@router.get(OAUTH2_REDIRECT)
async def oauth2_redirect() -> HTMLResponse:
    """Swagger UI's own redirect page (its script a file of swagger-ui-dist, not inline)."""
    return HTMLResponse(
        f'<!doctype html><html lang="en-US"><body><script src="{SWAGGER_UI}/oauth2-redirect.js">'
        "</script></body></html>"
    )


def vendor_assets() -> StaticFiles:
    """Swagger UI's files (check_dir off: without `npm ci` the API still starts, /docs bare)."""
    return StaticFiles(directory=VENDOR / "swagger-ui-dist", check_dir=False)

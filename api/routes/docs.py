"""The OpenAPI page (/docs), its Swagger UI served by the farm itself from web/node_modules
(scripts/setup.sh installs it from the npm registry): a farm on a private network has no CDN,
and FastAPI's default page, whose script and style come from one, is blank there."""

from pathlib import Path

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

VENDOR = Path(__file__).resolve().parents[2] / "web" / "node_modules"
SWAGGER_UI = "/static/vendor/swagger-ui"
OAUTH2_REDIRECT = "/docs/oauth2-redirect"

router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def docs() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="modelfarm: API",
        swagger_js_url=f"{SWAGGER_UI}/swagger-ui-bundle.js",
        swagger_css_url=f"{SWAGGER_UI}/swagger-ui.css",
        swagger_favicon_url=f"{SWAGGER_UI}/favicon-32x32.png",
        oauth2_redirect_url=OAUTH2_REDIRECT,
    )


@router.get(OAUTH2_REDIRECT)
async def oauth2_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


def vendor_assets() -> StaticFiles:
    """Swagger UI's files (check_dir off: without `npm ci` the API still starts, /docs bare)."""
    return StaticFiles(directory=VENDOR / "swagger-ui-dist", check_dir=False)

// The OpenAPI page's Swagger UI, started from a file rather than an inline script (the farm's
// Content-Security-Policy allows no inline script): FastAPI's default settings, with the
// addresses the page gives in its data attributes.
const root = document.getElementById("swagger-ui");
window.ui = SwaggerUIBundle({
  url: root.dataset.openapiUrl,
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  oauth2RedirectUrl: window.location.origin + root.dataset.oauth2Redirect,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});

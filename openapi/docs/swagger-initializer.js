// Starts Swagger UI on /docs against this service's own /openapi.json. A file of its own (not an
// inline script) so the page can be served with a strict Content-Security-Policy.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "StandaloneLayout",
    // No call to the public validator: the page must work offline and same-origin only.
    validatorUrl: null,
    // Keeps a Bearer token or API key entered in "Authorize" across reloads.
    persistAuthorization: true,
    displayRequestDuration: true,
  });
});

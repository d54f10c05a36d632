// Swagger UI for /api/docs, loaded from our own static files (no CDN, no inline script).
"use strict";

window.addEventListener("load", () => {
  const root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({  // eslint-disable-line no-undef
    url: root.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],  // eslint-disable-line no-undef
    layout: "BaseLayout",
  });
});

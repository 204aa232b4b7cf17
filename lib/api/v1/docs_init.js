// Starts Swagger UI on the API's own description. No validator badge: it would send the
// description to validator.swagger.io. Requests from "Try it out" carry the session cookie;
// state-changing ones get the session's CSRF token, read once from /api/v1/session.
(function () {
  let csrf = null;
  fetch("/api/v1/session", { credentials: "same-origin" })
    .then((r) => (r.ok ? r.json() : null))
    .then((s) => { csrf = s && s.csrf_token; });
  window.ui = SwaggerUIBundle({
    url: "/api/v1/openapi.json",
    dom_id: "#swagger-ui",
    validatorUrl: null,
    deepLinking: true,
    requestInterceptor: (req) => {
      if (csrf && !["GET", "HEAD", "OPTIONS"].includes((req.method || "GET").toUpperCase())) {
        req.headers["X-CSRF-Token"] = csrf;
      }
      return req;
    },
  });
})();

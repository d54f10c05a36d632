"""Cross-cutting pieces of the web app: errors, security, auth, metrics, middleware."""

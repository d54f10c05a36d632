"""Server-rendered pages (Jinja2 + Bootstrap, small static JavaScript)."""

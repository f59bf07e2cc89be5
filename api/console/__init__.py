"""The web console: server-rendered pages (Jinja2, autoescaped) over the same handlers and
read-model queries as the JSON API. A page module parses a form or a query (with the API's
own marshmallow schemas), calls one handler or query, and renders a template."""

"""The Falcon web application: agent services, admin REST API, health and OpenAPI."""

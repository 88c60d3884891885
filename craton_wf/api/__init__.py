"""The REST API (FastAPI): thin routes over the services; responses are schemas."""

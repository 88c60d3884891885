"""Alembic migrations of craton-wf (shipped as ``craton_wf.migrations``)."""

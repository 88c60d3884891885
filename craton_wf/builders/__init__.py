"""Builders: turn a task's source into an image.

``source`` fetches a git repository or unpacks an uploaded archive into a
scratch directory and finds the build context in it; ``image`` runs the
docker build and reports its output line by line, or reuses the image of an
earlier build with the same ``build_key``. These are boundary modules:
the only ones (with ``executors``) that import ``git`` and ``docker``, and they
raise only ``SourceError`` and ``BuildError`` from ``craton_wf.errors``.
"""

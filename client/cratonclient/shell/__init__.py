"""The ``craton`` command line (entry point :func:`cratonclient.shell.main.main`)."""

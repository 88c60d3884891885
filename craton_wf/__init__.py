"""craton-wf: the containerized workflow engine of OpenStack Craton."""

__version__ = "0.1.0"

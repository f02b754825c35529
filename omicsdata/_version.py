"""The one version number of the omicszoo distribution (read by setuptools, omicsdata and zoo)."""

__version__ = "0.1.0"

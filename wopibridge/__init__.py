"""wopibridge: a WOPI host that lets office and collaborative editors work on mesh storage."""

__version__ = "0.1.0"

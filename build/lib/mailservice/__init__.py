"""mailservice: e-mail-centric service for a department information office."""

__version__ = "0.1.0"

"""Every model registered on ``Base`` (Alembic, tests, backup, and a session that names no domain).

The modules are listed by domain in :mod:`mailservice.model_domains`, the composition root of the ORM.
"""

from mailservice import model_domains
from mailservice.db import Base

model_domains.load()

__all__ = ["Base"]

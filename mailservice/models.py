"""Imports every model module so that ``Base.metadata`` knows all tables (Alembic, tests)."""

from mailservice import jobruns as jobruns_models  # scheduled runs (issue 17)
from mailservice import outbox as outbox_models
from mailservice.db import Base
from mailservice.feedback import models as feedback_models  # console issue
from mailservice.history import models as history_models  # console issue
from mailservice.inforequests import models as inforequests_models
from mailservice.inforequests import search_index as search_models  # full-text index (issue 19)
from mailservice.intake import models as intake_models
from mailservice.mailings import models as mailings_models  # mailings issue
from mailservice.processes import models as processes_models  # process register (issue 9)
from mailservice.web.staff import models as console_models  # console issue
from mailservice.workgroup import models as workgroup_models  # working group (issue 8)

# mount: each domain adds `from mailservice.<domain> import models as <domain>_models` here and to __all__.

__all__ = [
    "Base",
    "console_models",
    "feedback_models",
    "history_models",
    "inforequests_models",
    "intake_models",
    "jobruns_models",
    "mailings_models",
    "outbox_models",
    "processes_models",
    "search_models",
    "workgroup_models",
]

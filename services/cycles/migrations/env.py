import services.cycles.notifications  # noqa: F401 - registers its table on Base.metadata
from services.common.migrations import run_env
from services.cycles.models import Base

run_env(Base.metadata, service="cycles")

from services.common.migrations import run_env
from services.cycles.models import Base

run_env(Base.metadata, service="cycles")

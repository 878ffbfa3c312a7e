from services.common.migrations import run_env
from services.goals.models import Base

run_env(Base.metadata, service="goals")

"""The eight steps of the launch procedure, in the order they run."""

from .assistant import ASSISTANT_FLOW
from .cost import COST_CHECK
from .failures import FAILURE_PATHS
from .images import EDIT, FIRST_GENERATION, TARGET
from .launch_log import LAUNCH_LOG
from .ownership import OWNERSHIP

STEPS = (OWNERSHIP, FIRST_GENERATION, EDIT, TARGET, ASSISTANT_FLOW, COST_CHECK, FAILURE_PATHS, LAUNCH_LOG)

__all__ = ["STEPS"]

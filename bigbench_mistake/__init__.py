"""BIG-Bench Mistake: data, task specs, answer scoring and mistake-finding metrics."""
from .records import DataError, Trace, ValidationIssue
from .tasks import TASKS, TaskSpec, format_step, get_task, render_steps

__all__ = ["DataError", "Trace", "ValidationIssue", "TASKS", "TaskSpec", "format_step", "get_task", "render_steps"]

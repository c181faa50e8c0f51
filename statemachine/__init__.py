"""State machines of the world, domains, fusions and tasks, and the scheduler that advances them."""
from statemachine.machines import STATES, TERMINAL, Unit, transitions_of
from statemachine.scheduler import Scheduler

__all__ = ["STATES", "TERMINAL", "Scheduler", "Unit", "transitions_of"]

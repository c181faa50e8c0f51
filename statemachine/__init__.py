"""State machines of the world, domains, fusions and tasks, and the scheduler that advances them."""
from skiller.statemachine.machines import STATES, TERMINAL, Unit, transitions_of
from skiller.statemachine.scheduler import Scheduler

__all__ = ["STATES", "TERMINAL", "Scheduler", "Unit", "transitions_of"]

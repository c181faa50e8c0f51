"""What a sandbox is given (limits) and what it reports (results); its own unavailability is an error."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SandboxUnavailable(Exception):
    """The sandbox itself cannot run (its interpreter, a harness module such as pytest, its limits):
    infrastructure, not a failure of the code it was asked to run. One line naming cause and fix."""

class SandboxLimits(BaseModel):
    """Resource limits applied to every sandboxed process."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cpu_seconds: int = Field(default=20, gt=0)
    """CPU time (user + system); SIGXCPU at the limit, SIGKILL one second later."""
    memory_mb: int = Field(default=1024, gt=0)
    """Address-space limit (RLIMIT_AS); also caps the size of any file the child writes."""
    wall_seconds: float = Field(default=60, gt=0)
    """Wall-clock limit for run_python / run_pytest; not applied to spawn."""
    max_output_bytes: int = Field(default=200_000, ge=0)
    """Bytes kept from each of stdout and stderr."""


class SandboxResult(BaseModel):
    """What a sandboxed run did; the child's misbehaviour is described here, never raised."""

    model_config = ConfigDict(frozen=True)

    exit_code: int
    """Process exit status; negative signal number when killed by a signal."""
    stdout: str
    stderr: str
    timed_out: bool
    """True when the wall-clock or CPU-time limit ended the run."""
    killed: str | None = None
    """Why the run ended abnormally: "wall timeout", "cpu limit", "memory limit", "signal N"."""
    outputs: dict[str, bytes] = Field(default_factory=dict)
    """Requested files collected from the temp dir after the run (absent when not produced)."""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and self.killed is None


class PytestResult(SandboxResult):
    """A sandboxed pytest run with its counts parsed from the summary line."""

    passed: int = 0
    failed: int = 0
    errors: int = 0
    summary: str = ""
    """pytest's final line, e.g. "1 failed, 2 passed in 0.05s"; empty if none was printed."""

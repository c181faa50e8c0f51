"""τ²-bench interop check: scores every exported task's golden actions with τ²-bench's own evaluators.

Needs τ²-bench importable (not a Skiller dependency; never run by the test suite). For each domain in
a `skiller export --format tau2` folder: plays the golden actions through `Environment.get_response`,
then prints how many tasks τ²-bench's DB check (strict replay) and ACTION check score 1.0, and how many
write tasks a do-nothing trajectory fails.

    python bench/tau2_interop.py ws/outputs/tau2
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export", type=Path, help="folder written by `skiller export --format tau2`")
    args = parser.parse_args()
    try:
        from tau2.data_model.message import AssistantMessage, ToolCall, UserMessage
        from tau2.evaluator.evaluator_action import ActionEvaluator
        from tau2.evaluator.evaluator_env import EnvironmentEvaluator
        from tau2.registry import registry
    except ImportError as exc:
        print(f"tau2_interop: τ²-bench is not importable ({exc})", file=sys.stderr)
        return 2
    from loguru import logger
    logger.remove()  # τ²-bench logs every tool response at DEBUG
    sys.path.insert(0, str(args.export.resolve()))
    launcher = importlib.import_module("run_tau2")
    launcher.register_all(registry)
    failures = 0
    for domain in launcher.DOMAINS:
        began = time.perf_counter()
        make = registry.get_env_constructor(domain)
        tasks = registry.get_tasks_loader(domain)("base")
        kinds = make().tools
        passed = writes = noop_failed = 0
        for task in tasks:
            env = make()
            trajectory: list = [UserMessage(role="user", content="hello")]
            for i, action in enumerate(task.evaluation_criteria.actions):
                call = ToolCall(id=f"call_{i}", name=action.name, arguments=action.arguments)
                trajectory += [AssistantMessage(role="assistant", tool_calls=[call]), env.get_response(call)]
            trajectory.append(AssistantMessage(role="assistant", content="Done."))
            db = EnvironmentEvaluator.calculate_reward(make, task, trajectory, strict_replay=True).reward
            act = ActionEvaluator.calculate_reward(task, trajectory).reward
            passed += db == 1.0 and act == 1.0
            if any(kinds.tool_type(a.name).value == "write" for a in task.evaluation_criteria.actions):
                writes += 1
                silent = [UserMessage(role="user", content="hello"), AssistantMessage(role="assistant", content="No.")]
                noop_failed += EnvironmentEvaluator.calculate_reward(make, task, silent).reward == 0.0
        failures += (len(tasks) - passed) + (writes - noop_failed)
        print(f"{domain}: {len(kinds.tools)} tools, golden actions pass DB+ACTION on {passed}/{len(tasks)} tasks, "
              f"do-nothing fails {noop_failed}/{writes} write tasks ({time.perf_counter() - began:.1f} s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

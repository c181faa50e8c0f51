"""The `skiller` command line: thin wrappers over workspace, scheduler, export and verify."""
from __future__ import annotations

import argparse
import json
import signal
import sqlite3
import sys
from pathlib import Path

import structlog
from rich.markup import escape

from skiller import report, runner
from skiller.config import ConfigError, config_schema
from skiller.evaluator import format_summary, summary_table
from skiller.export import ExportError, current_results, export
from skiller.executors import local_workers
from skiller.formats import ExportError as FormatError
from skiller.formats import export_format
from skiller.names import resolve, resolve_fusion
from skiller.servers.environment import Environment
from skiller.servers.listen import ServeError, listen
from skiller.servers.sandbox import Sandbox, SandboxLimits
from skiller.servers.task import EnvironmentBundle
from skiller.statemachine import STATES
from skiller.status import console, err, failures, print_causes, print_status, print_summary
from skiller.steps.s18_rollout import Transcripts
from skiller.store import LockHeld, StoreError
from skiller.system_errors import log_failure, one_line_failure
from skiller.targets import advance_target
from skiller.verify import verify
from skiller.view import build, serve
from skiller.workspace import Workspace, WorkspaceError



def _ws(args, write: bool = False) -> Workspace:
    """Open the workspace; a writing command takes its lock. `main` closes it (and frees the lock)."""
    ws = Workspace.open(Path(args.workspace), args.set, write=args.command if write else None)
    args.opened.append(ws)
    return ws


def _export_workers(ws) -> int:
    """The run's worker processes also write outputs/ (`scheduler.executor: processes`); else this process."""
    return local_workers(ws.config) if ws.config.scheduler.executor == "processes" else 1


def cmd_init(args) -> int:
    root = Workspace.init(Path(args.dir), args.preset)
    console.print(f"initialised workspace {root}" + (f" (preset {args.preset})" if args.preset != "default" else ""))
    return 0


def cmd_run(args) -> int:
    ws = _ws(args, write=True)
    proj = runner.advance(ws, "run", runner.stop_after(ws.config))
    if args.export:
        export(ws.store, ws.root / "outputs", workers=_export_workers(ws))
    print_summary(proj)
    _print_scores(ws)
    return 1 if failures(proj) else 0


def cmd_advance(args) -> int:
    if args.to and args.to not in STATES["domain"]:
        raise ConfigError(f"--to: '{args.to}' is not a domain state ({', '.join(STATES['domain'])})")
    ws = _ws(args, write=True)
    name, extra = advance_target(ws, args.domain)  # checked before any work
    if extra:  # a fresh workspace: s01 must include the domain
        ws.close()
        args.set = [*args.set, *extra]
        ws = _ws(args, write=True)
    proj = runner.advance(ws, f"advance --domain {name}", runner.only_domain(name, args.to))
    m = proj.machines.get(f"domain:{name}")
    if m is None:
        known = sorted(v.stream.split(":", 1)[1] for v in proj.of_kind("domain"))
        raise WorkspaceError(f"no domain '{name}' in this workspace (known: {', '.join(known) or 'none'})")
    console.print(f"{m.stream}: {m.state}" + (f" ({m.last_error})" if m.last_error else ""), markup=False,
                  highlight=False)
    return 1 if m.last_error or m.state == "failed" else 0


def _check_environment(ws, name: str | None) -> None:
    """`--domain NAME` of rollout/evaluate must name an environment that has tasks."""
    if name is None:
        return
    known = sorted({m.inputs.get("domain") for m in ws.store.projection().of_kind("task")} - {None})
    if name not in known:
        raise WorkspaceError(f"--domain: no tasks for '{name}' in this workspace (known: {', '.join(known) or 'none'})")


def cmd_rollout(args) -> int:
    overrides = [f"rollout.agent={args.agent}"] if args.agent else []
    overrides += [f"rollout.trials={args.trials}"] if args.trials else []
    args.set = [*args.set, *overrides]
    ws = _ws(args, write=True)
    _check_environment(ws, args.domain)
    proj = runner.advance(ws, "rollout", runner.tasks_in({"instantiated", "evaluated"}, args.domain))
    export(ws.store, ws.root / "outputs", workers=_export_workers(ws))
    done = [m for m in proj.of_kind("task") if m.state == "rolled_out"
            and (args.domain is None or m.inputs.get("domain") == args.domain)]
    console.print(f"rolled out {len(done)} tasks with agent {ws.config.rollout.agent} "
                  f"({ws.config.rollout.trials} trial(s) each)")
    lost = sum(t.termination == "infrastructure_error" for m in done
               for t in Transcripts.model_validate_json(ws.store.artifact(m.artifacts["transcripts"])).items)
    if lost:
        err.print(f"skiller: {lost} episode(s) could not run (infrastructure_error): kept apart, not scored, "
                  "not exported for SFT", highlight=False, markup=False, soft_wrap=True)
    tasks = [m for m in proj.of_kind("task") if m.last_error]
    print_causes(tasks)
    return 1 if tasks or lost else 0


def cmd_evaluate(args) -> int:
    ws = _ws(args, write=True)
    _check_environment(ws, args.domain)
    runner.advance(ws, "evaluate", runner.tasks_in({"rolled_out"}, args.domain))
    export(ws.store, ws.root / "outputs", workers=_export_workers(ws))
    if not _print_scores(ws):
        raise WorkspaceError("nothing to evaluate: run `skiller rollout` first")
    console.print(f"wrote {ws.root / 'outputs' / 'evaluation' / 'results.jsonl'}")
    return 0


def _print_scores(ws) -> bool:
    """The pass^k table of the current campaign, when there is one."""
    results = current_results(ws.store, ws.store.projection())
    if results:
        console.print(format_summary(summary_table(results, ws.config.evaluation.max_k)), highlight=False,
                      soft_wrap=True)
    return bool(results)


def cmd_status(args) -> int:
    print_status(_ws(args))
    return 0


def cmd_log(args) -> int:
    ws = _ws(args)
    stream = args.stream
    if args.domain:
        stream = "domain:" + resolve(args.domain, [m.inputs["domain"] for m in ws.store.projection().of_kind("domain")])
    for row in ws.store.rows(stream=stream):
        if row.type == "Transitioned":
            what = f"{row.trigger}: {row.source} -> {row.dest}"
        else:
            payload = json.loads(row.payload)
            what = " ".join(f"{k}={v}" for k, v in payload.items() if k in (
                "kind", "initial", "purpose", "model", "cache_hit", "passed", "failed", "error", "step", "command"))
        console.print(f"{row.seq:>7} {row.run_id:<9} {row.stream:<28} {row.type:<14} {what}", highlight=False,
                      soft_wrap=True, markup=False)
    return 0


def cmd_replay(args) -> int:
    ws = _ws(args)
    report = verify(ws.store, ws.sandbox(), deep=args.verify)
    rate = report.events / report.seconds if report.seconds else float("inf")
    console.print(f"replayed {report.events} events in {report.seconds:.3f}s ({rate:,.0f} events/s)")
    if report.checked:
        console.print("checked: " + ", ".join(report.checked))
    for problem in report.problems:
        err.print(f"[red]drift[/red] {escape(problem)}", highlight=False, soft_wrap=True)
    if report.ok:
        console.print("replay verified: no drift" if args.verify else "replay ok")
    return 0 if report.ok else 1


def cmd_export(args) -> int:
    ws = _ws(args)
    if not args.out and ws.store.readonly == "immutable":
        raise WorkspaceError(f"workspace {ws.root} is read-only; export elsewhere with --out DIR")
    if args.format in ("tau2", "hf"):
        out = Path(args.out) if args.out else ws.root / "outputs" / args.format
        try:
            written = export_format(args.format, ws.store, out)
        except FormatError as exc:
            err.print(f"skiller: export --format {args.format}: {exc}", markup=False, highlight=False, soft_wrap=True)
            return 1
        console.print(f"wrote {len(written)} files to {out}")
        return 0
    out = Path(args.out) if args.out else ws.root / "outputs"
    written = export(ws.store, out, sft=args.format == "sft", workers=_export_workers(ws))
    console.print(f"wrote {len(written)} files to {out}")
    return 0


def cmd_view(args) -> int:
    ws = _ws(args)
    out = Path(args.out) if args.out else ws.root / "site"
    written = build(ws.store, out, ws.config.evaluation.max_k)
    console.print(f"wrote {len(written)} pages to {out}; open {out / 'index.html'}", soft_wrap=True)
    if args.serve:
        try:
            serve(out, args.port, on_ready=lambda url: err.print(f"serving the explorer at {url}", soft_wrap=True))
        except KeyboardInterrupt:
            err.print("stopped serving")
    return 0


def cmd_serve(args) -> int:
    """Serve a domain (or a fusion) as a real MCP server over its initial database."""
    ws = _ws(args)
    proj = ws.store.projection()
    domains = [m.inputs["domain"] for m in proj.of_kind("domain")]
    if args.domain:
        stream = "domain:" + resolve(args.domain, domains)
    else:  # members in any order
        stream = resolve_fusion(args.fusion, {m.stream: m.inputs["members"] for m in proj.of_kind("fusion")}, domains)
    m = proj.machines.get(stream)
    if m is None or "environment" not in m.artifacts or "database" not in m.artifacts:
        ready = sorted(v.stream for v in proj.machines.values() if "environment" in v.artifacts)
        raise WorkspaceError(f"{stream} is not ready to serve (servable: {', '.join(ready) or 'none yet; run first'})")
    bundle = EnvironmentBundle.model_validate_json(ws.store.artifact(m.artifacts["environment"]))
    database = ws.store.artifact(m.artifacts["database"])
    sock = listen(args.host, args.port) if args.transport == "http" else None  # a bad host/port: before any work
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # unwind so the worker and temp dir are cleaned up
    sandbox = Sandbox(SandboxLimits(cpu_seconds=24 * 3600, memory_mb=ws.config.sandbox.memory_mb))
    # deferred: start-up time; `mcp` takes about a second to import and only this command serves it
    from skiller.servers.mcp_server import serve_http, serve_stdio
    try:
        with Environment.start(list(bundle.modules), database, sandbox) as env:
            if sock is None:
                serve_stdio(env, bundle.name)
            else:
                serve_http(env, bundle.name, host=args.host, port=args.port, sock=sock,
                           on_ready=lambda url: err.print(f"MCP server ready at {url}", soft_wrap=True))
    except KeyboardInterrupt:  # the first Ctrl-C stops the server; the worker and temp dir are gone by now
        err.print(f"skiller: stopped serving {stream}", highlight=False, markup=False)
        return 130
    finally:
        if sock is not None:
            sock.close()
    return 0


def cmd_report(args) -> int:
    ws = _ws(args)
    built = report.build(ws.store, ws.config.clock.isoformat())
    if not built.environments:
        raise WorkspaceError("nothing to report: no instantiated tasks yet (run `skiller run` first)")
    console.print(report.table(built), highlight=False, soft_wrap=True)
    console.print(f"wrote {report.write(built, ws.root / 'outputs')}")
    return 0


def cmd_config(args) -> int:
    console.print_json(json.dumps(config_schema()))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="skiller", description="Synthesize executable tool-use environments and tasks.")
    sub = p.add_subparsers(dest="command", required=True)

    def add(name: str, fn, help: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help)
        sp.set_defaults(fn=fn)
        if name not in ("init", "config"):
            sp.add_argument("-w", "--workspace", default=".", help="workspace folder (default: .)")
            sp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                            help="override a config key, e.g. steps.s06.rows_per_table=50")
        return sp

    sp = add("init", cmd_init, "create a workspace")
    sp.add_argument("dir", nargs="?", default=".")
    sp.add_argument("--preset", choices=["default", "volume"], default="default",
                    help="volume: 124 environments (catalog + seeded variants), most tasks cross-domain")
    sp = add("run", cmd_run, "advance every machine as far as the config says")
    sp.add_argument("--no-export", dest="export", action="store_false", help="do not write outputs/")
    sp = add("advance", cmd_advance, "advance one domain (and only what it needs)")
    sp.add_argument("--domain", required=True)
    sp.add_argument("--to", help="stop at this state")
    add("status", cmd_status, "machines by state, LLM calls and tokens")
    sp = add("rollout", cmd_rollout, "roll out instantiated tasks (user simulator + assistant + environment)")
    sp.add_argument("--agent", choices=["oracle", "noop", "anthropic", "openai"])
    sp.add_argument("--trials", type=int)
    sp.add_argument("--domain")
    sp = add("evaluate", cmd_evaluate, "score rolled-out tasks; writes evaluation/results.jsonl, prints pass^k")
    sp.add_argument("--domain")
    sp = add("log", cmd_log, "print the event log")
    sp.add_argument("--domain")
    sp.add_argument("--stream")
    sp = add("replay", cmd_replay, "re-fold the log; --verify also re-checks artifacts and re-runs checks")
    sp.add_argument("--verify", action="store_true")
    sp = add("export", cmd_export, "write outputs/ in the reference layout from the log")
    sp.add_argument("--out")
    sp.add_argument("--format", choices=["reference", "sft", "tau2", "hf"], default="reference",
                    help="sft: also write sft/<Env>.jsonl chat transcripts ready for SFT trainers; "
                         "tau2: τ²-bench domain packages (default --out outputs/tau2); "
                         "hf: Hugging Face parquet dataset with a card (default --out outputs/hf)")
    sp = add("view", cmd_view, "write a static HTML explorer of the workspace (optionally serve it on 127.0.0.1)")
    sp.add_argument("--out", help="site folder (default: <workspace>/site)")
    sp.add_argument("--serve", action="store_true", help="then serve it on 127.0.0.1 until interrupted")
    sp.add_argument("--port", type=int, default=0, help="port for --serve (default: any free port)")
    sp = add("serve", cmd_serve, "serve a domain or fusion as an MCP server (stdio or streamable HTTP)")
    which = sp.add_mutually_exclusive_group(required=True)
    which.add_argument("--domain")
    which.add_argument("--fusion", help="members joined by '+', e.g. Hospital+HealthInsurance")
    sp.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    sp.add_argument("--host", default="127.0.0.1")
    sp.add_argument("--port", type=int, default=0)
    add("report", cmd_report, "data-quality report of tasks and rollouts; writes outputs/report/quality.json")
    add("config", cmd_config, "print the config JSON Schema")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.opened = []
    try:
        return args.fn(args)
    except (ConfigError, WorkspaceError, ServeError, ExportError, LockHeld, StoreError) as exc:
        log_failure(exc, str(exc))
        err.print(f"skiller: {exc}", highlight=False, soft_wrap=True, markup=False)
        return 2
    except sqlite3.DatabaseError as exc:  # a database file damaged under a running command
        where = Path(getattr(args, "workspace", None) or args.dir) / "skiller.db"
        err.print(f"skiller: {where} is corrupt or unreadable ({exc}); "
                  "run `skiller replay --verify` for an audit", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        err.print("skiller: interrupted; committed work is kept, run again to resume")
        return 130
    except Exception as exc:  # disk full, I/O errors, last resort: one line here, the traceback in the log
        line = one_line_failure(exc)
        if line is not None:
            err.print(f"skiller: {line}", highlight=False, soft_wrap=True, markup=False)
            return 1
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        hint = ""
        if args.opened:  # a workspace was open: its event log may be at fault, its log file has the traceback
            structlog.get_logger().exception("cli.failed", command=args.command)
            logged = args.opened[0].store.readonly != "immutable"  # a read-only workspace gets no log file
            hint = f" ({'details in skiller.log; ' if logged else ''}`skiller replay --verify` audits the event log)"
        err.print(f"skiller: {args.command} failed: {type(exc).__name__}: {first}{hint}", highlight=False,
                  soft_wrap=True, markup=False)
        return 1
    finally:
        for ws in args.opened:
            ws.close()


if __name__ == "__main__":
    sys.exit(main())

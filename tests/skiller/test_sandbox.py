"""The sandbox contains misbehaving generated code and reports what it did, using real processes."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from skiller.servers.sandbox import PytestResult, Sandbox, SandboxLimits, network_namespace_available

LIMITS = SandboxLimits(cpu_seconds=2, memory_mb=256, wall_seconds=5)


@pytest.fixture
def sandbox() -> Sandbox:
    return Sandbox(LIMITS)


def _script(source: str) -> dict[str, str]:
    return {"main.py": textwrap.dedent(source)}


def _descendants() -> set[int]:
    """Pids of every live process descended from this test process."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            parents[int(entry)] = int(fields[1])
    found: set[int] = set()
    frontier = {os.getpid()}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return found


def test_script_returns_stdout_exit_code_and_collected_file(sandbox: Sandbox) -> None:
    result = sandbox.run_python(
        {"main.py": "import sys, helper\nprint(helper.greet(sys.argv[1]))\n"
                    "open('out/result.txt', 'w').write('done')\n",
         "helper.py": "def greet(name):\n    return 'hello ' + name\n",
         "out/.keep": b""},
        "main.py", args=["world"], collect=["out/result.txt", "never-written.txt"],
    )
    assert result.ok, result.stderr
    assert (result.exit_code, result.stdout, result.killed) == (0, "hello world\n", None)
    assert result.outputs == {"out/result.txt": b"done"}


def test_sqlite_database_written_in_the_temp_dir_is_collected(sandbox: Sandbox,
                                                              tmp_path: Path) -> None:
    result = sandbox.run_python(_script("""
        import sqlite3
        db = sqlite3.connect("shop.db")
        db.execute("create table item(name text)")
        db.execute("insert into item values ('apple')")
        db.commit()
    """), "main.py", collect=["shop.db"])
    assert result.ok, result.stderr
    (tmp_path / "shop.db").write_bytes(result.outputs["shop.db"])
    assert sqlite3.connect(tmp_path / "shop.db").execute("select name from item").fetchall() == [
        ("apple",)]


def test_temp_dir_is_removed_after_the_run(sandbox: Sandbox) -> None:
    result = sandbox.run_python(_script("import os\nprint(os.getcwd())\n"), "main.py")
    work = result.stdout.strip()
    assert work and not os.path.exists(work)


def test_infinite_loop_is_killed_by_the_cpu_limit_and_reported(sandbox: Sandbox) -> None:
    started = time.monotonic()
    result = sandbox.run_python(_script("while True:\n    pass\n"), "main.py")
    assert result.timed_out and not result.ok
    # CPU time normally runs out first; on a saturated machine the wall limit may win.
    assert result.killed in ("cpu limit", "wall timeout")
    assert time.monotonic() - started < LIMITS.wall_seconds + 2


def test_blocked_process_is_killed_at_the_wall_limit(tmp_path: Path) -> None:
    sandbox = Sandbox(LIMITS.model_copy(update={"wall_seconds": 1.0}))
    started = time.monotonic()
    result = sandbox.run_python(
        _script("import time\nprint('start', flush=True)\ntime.sleep(60)\n"), "main.py")
    assert (result.timed_out, result.killed, result.stdout) == (True, "wall timeout", "start\n")
    assert time.monotonic() - started < 4


def test_memory_hog_fails_within_the_limit_and_is_reported(sandbox: Sandbox) -> None:
    result = sandbox.run_python(_script("data = bytearray(4 * 1024 ** 3)\nprint('allocated')\n"),
                                "main.py")
    assert not result.ok
    assert result.killed == "memory limit"
    assert "MemoryError" in result.stderr and "allocated" not in result.stdout


@pytest.mark.parametrize("bomb", [
    "import os\nwhile True:\n    os.fork()\n",
    "import subprocess, sys\nwhile True:\n    subprocess.Popen([sys.executable, '-c', 'pass'])\n",
    "import os\nwhile True:\n    os.system('true')\n",
    "import os\nwhile True:\n    os.posix_spawn('/bin/true', ['true'], {})\n",
    "import multiprocessing\nwhile True:\n    multiprocessing.Process(target=print).start()\n",
    "import _posixsubprocess, sys\n_posixsubprocess.fork_exec([b'/bin/true'], [b'/bin/true'],"
    " True, (), None, None, -1, -1, -1, -1, -1, -1, -1, -1, False, False, None, None, None, -1,"
    " None, False)\n",
    "import sys, importlib\nsys.modules.pop('_posixsubprocess')\nimportlib.import_module("
    "'_posixsubprocess')\n",
], ids=["os.fork", "subprocess", "os.system", "posix_spawn", "multiprocessing", "fork_exec",
        "reimport"])
def test_fork_bomb_is_stopped_and_leaves_no_processes(sandbox: Sandbox, bomb: str) -> None:
    before = _descendants()
    result = sandbox.run_python({"main.py": bomb}, "main.py")
    assert not result.ok
    assert "PermissionError" in result.stderr and "sandbox" in result.stderr
    assert _descendants() == before


def test_connection_to_a_local_listener_is_blocked(sandbox: Sandbox) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        result = sandbox.run_python(_script(f"""
            import socket
            socket.create_connection(("127.0.0.1", {port}), timeout=2).sendall(b"leak")
        """), "main.py")
        assert not result.ok
        assert "PermissionError" in result.stderr and "network" in result.stderr
        with pytest.raises(BlockingIOError):
            listener.accept()


def test_name_resolution_is_blocked(sandbox: Sandbox) -> None:
    result = sandbox.run_python(_script("import socket\nsocket.getaddrinfo('example.com', 80)\n"),
                                "main.py")
    assert not result.ok and "PermissionError" in result.stderr


def test_child_gets_its_own_network_namespace_when_the_kernel_allows(sandbox: Sandbox) -> None:
    if not network_namespace_available():
        pytest.skip("unshare(CLONE_NEWNET) is not permitted here; only the audit hook applies")
    result = sandbox.run_python(_script("import os\nprint(os.readlink('/proc/self/ns/net'))\n"),
                                "main.py")
    assert result.ok, result.stderr
    assert result.stdout.strip() != os.readlink("/proc/self/ns/net")


@pytest.mark.parametrize("write", [
    "open(TARGET, 'w').write('x')",
    "open(TARGET, 'a').write('x')",
    "import pathlib\npathlib.Path(TARGET).write_bytes(b'x')",
    "import os\nos.close(os.open(TARGET, os.O_WRONLY | os.O_CREAT))",
    "import os\nos.symlink(TARGET, 'link')\nopen('link', 'w').write('x')",
    "import os\nos.symlink(os.path.dirname(TARGET), 'd')\nopen('d/escape.txt', 'w').write('x')",
    "import os\nos.chdir(os.path.dirname(TARGET))\nopen('escape.txt', 'w').write('x')",
    "import sqlite3\nsqlite3.connect(TARGET).execute('create table t(x)')",
    "import os\nopen('inside', 'w').write('x')\nos.rename('inside', TARGET)",
    "import os\nfd = os.open(os.path.dirname(TARGET), os.O_RDONLY)\n"
    "os.close(os.open('escape.txt', os.O_WRONLY | os.O_CREAT, dir_fd=fd))",
], ids=["open-w", "open-a", "pathlib", "os.open", "file-symlink", "dir-symlink", "chdir",
        "sqlite", "rename", "dir_fd"])
def test_writing_outside_the_temp_dir_is_blocked(sandbox: Sandbox, tmp_path: Path,
                                                 write: str) -> None:
    target = tmp_path / "escape.txt"
    result = sandbox.run_python({"main.py": f"TARGET = {str(target)!r}\n{write}\n"}, "main.py")
    assert not result.ok
    assert "PermissionError" in result.stderr and "outside the sandbox" in result.stderr
    assert not target.exists()


def test_removing_a_file_outside_the_temp_dir_is_blocked(sandbox: Sandbox, tmp_path: Path) -> None:
    keep = tmp_path / "keep.txt"
    keep.write_text("precious")
    result = sandbox.run_python(_script(f"import os\nos.remove({str(keep)!r})\n"), "main.py")
    assert "PermissionError" in result.stderr
    assert keep.read_text() == "precious"


def test_writing_inside_the_temp_dir_and_to_dev_null_works(sandbox: Sandbox) -> None:
    result = sandbox.run_python(_script("""
        import os, pathlib, tempfile, shutil
        os.makedirs("a/b")
        pathlib.Path("a/b/c.txt").write_text("deep")
        with tempfile.NamedTemporaryFile("w", delete=False) as fh:
            fh.write("tmp")
        os.rename(fh.name, "moved.txt")
        open(os.devnull, "w").write("discarded")
        shutil.rmtree("a")
        print(open("moved.txt").read())
    """), "main.py", collect=["moved.txt"])
    assert result.ok, result.stderr
    assert result.stdout == "tmp\n" and result.outputs == {"moved.txt": b"tmp"}


def test_reading_another_process_environment_is_blocked(sandbox: Sandbox) -> None:
    result = sandbox.run_python(
        _script("import os\nprint(open(f'/proc/{os.getppid()}/environ').read())\n"), "main.py")
    assert "PermissionError" in result.stderr and result.stdout == ""


def test_signalling_other_processes_is_blocked(sandbox: Sandbox) -> None:
    result = sandbox.run_python(
        _script("import os, signal\nos.kill(os.getppid(), signal.SIGTERM)\n"), "main.py")
    assert "PermissionError" in result.stderr


def test_self_kill_is_reported_as_a_signal(sandbox: Sandbox) -> None:
    result = sandbox.run_python(
        _script("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n"), "main.py")
    assert (result.exit_code, result.killed, result.timed_out) == (-9, "signal 9", False)


def test_raising_resource_limits_is_blocked(sandbox: Sandbox) -> None:
    result = sandbox.run_python(_script(
        "import resource\nresource.setrlimit(resource.RLIMIT_CPU, (100, 100))\n"), "main.py")
    assert "PermissionError" in result.stderr


def test_env_vars_with_key_or_token_are_not_visible(sandbox: Sandbox,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-not-a-real-key-123")
    monkeypatch.setenv("SKILLER_TEST_TOKEN", "tok-not-real-456789")
    monkeypatch.setenv("SKILLER_TEST_PLAIN", "plain")
    result = sandbox.run_python(
        _script("import os, json\nprint(json.dumps(dict(os.environ)))\n"), "main.py",
        env={"MY_SECRET_KEY": "given-explicitly-000", "GREETING": "hi"},
    )
    assert result.ok, result.stderr
    env = json.loads(result.stdout)
    assert not [name for name in env if "KEY" in name or "TOKEN" in name]
    assert "SKILLER_TEST_PLAIN" not in env and env["GREETING"] == "hi"
    assert env["HOME"] == env["TMPDIR"] != os.environ.get("HOME")


def test_output_is_truncated_to_the_limit() -> None:
    sandbox = Sandbox(LIMITS.model_copy(update={"max_output_bytes": 1000}))
    result = sandbox.run_python(
        _script("import sys\nprint('x' * 100_000)\nprint('\\xff' * 10, file=sys.stderr)\n"),
        "main.py")
    assert result.ok
    kept, _, marker = result.stdout.partition("\n[")
    assert kept == "x" * 1000 and "truncated" in marker
    assert result.stderr == "\xff" * 10 + "\n"


def test_traceback_points_at_the_generated_script_only(sandbox: Sandbox) -> None:
    result = sandbox.run_python(_script("def f():\n    raise ValueError('bad row')\nf()\n"),
                                "main.py")
    assert result.exit_code == 1 and result.killed is None
    assert 'File "main.py", line 2' in result.stderr or "main.py\", line 2" in result.stderr
    assert "runpy" not in result.stderr and "<s" not in result.stderr


def test_run_pytest_counts_passed_and_failed_tests(sandbox: Sandbox) -> None:
    files = {
        "tools.py": "def add(a, b):\n    return a + b\n",
        "test_tools.py": textwrap.dedent("""
            import sqlite3
            from tools import add

            def test_add():
                assert add(1, 2) == 3

            def test_sqlite(tmp_path):
                db = sqlite3.connect(tmp_path / "x.db")
                assert db.execute("select 1").fetchone() == (1,)

            def test_wrong():
                assert add(1, 1) == 3
        """),
    }
    result = sandbox.run_pytest(files, "test_tools.py")
    assert isinstance(result, PytestResult)
    assert (result.passed, result.failed, result.errors) == (2, 1, 0), result.stdout + result.stderr
    assert result.exit_code == 1 and not result.ok
    assert result.summary.startswith("1 failed, 2 passed")


def test_run_pytest_on_a_passing_file_is_ok(sandbox: Sandbox) -> None:
    result = sandbox.run_pytest({"test_ok.py": "def test_one():\n    assert True\n"}, "test_ok.py")
    assert result.ok and (result.passed, result.failed, result.errors) == (1, 0, 0)


def test_run_pytest_counts_collection_errors(sandbox: Sandbox) -> None:
    result = sandbox.run_pytest({"test_broken.py": "import missing_module\n"}, "test_broken.py")
    assert (result.passed, result.errors) == (0, 1) and not result.ok


@pytest.mark.parametrize("entry", ["../main.py", "/etc/passwd", "", "absent.py"])
def test_bad_entry_name_raises(sandbox: Sandbox, entry: str) -> None:
    with pytest.raises(ValueError):
        sandbox.run_python(_script("print(1)\n"), entry)


def test_spawned_worker_talks_over_line_pipes_under_the_limits(sandbox: Sandbox,
                                                               tmp_path: Path) -> None:
    (tmp_path / "worker.py").write_text(textwrap.dedent("""
        import resource, socket, sys
        for line in sys.stdin:
            if line.strip() == "limits":
                print(resource.getrlimit(resource.RLIMIT_CPU)[0])
            elif line.strip() == "net":
                try:
                    socket.socket(socket.AF_INET)
                    print("network open")
                except PermissionError:
                    print("network blocked")
            else:
                open("state.txt", "a").write(line)
                print("echo " + line.strip())
    """))
    proc = sandbox.spawn([sys.executable, "worker.py"], str(tmp_path),
                         stderr=subprocess.DEVNULL)
    try:
        assert proc.stdin is not None and proc.stdout is not None
        for request, reply in [("hello", "echo hello"), ("limits", str(LIMITS.cpu_seconds)),
                               ("net", "network blocked")]:
            proc.stdin.write(request + "\n")
            assert proc.stdout.readline().strip() == reply
    finally:
        code = Sandbox.kill(proc)
    assert code == -9
    assert (tmp_path / "state.txt").read_text() == "hello\n"

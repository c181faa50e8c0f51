"""The sandboxed child's bootstrap: runs inside the child before any untrusted code, installs an audit
hook that cannot be removed, then runs the target. argv: -c, this source, root, mode (path|module|code),
target, args... Everything the hook calls is bound at install time so the child cannot monkeypatch it
away. The parent passes this file's text to `python -c` (compiled as "<sandbox>", so denials read
clearly in the child's tracebacks); it is never imported by the parent.
"""
import sys, posix

def _install(root):
    # deferred: the child binds what its hook needs at install time, before any untrusted code runs
    import stat, _socket, _posixsubprocess
    lstat, readlink, getcwd, fspath = posix.lstat, posix.readlink, posix.getcwd, posix.fspath
    getpid, getpgrp, is_link = posix.getpid, posix.getpgrp, stat.S_ISLNK
    enc, unix, inside_prefix = sys.getfilesystemencoding(), _socket.AF_UNIX, root + "/"
    write_flags = posix.O_WRONLY | posix.O_RDWR | posix.O_CREAT | posix.O_TRUNC | posix.O_APPEND
    std_streams = ("/dev/null", "/dev/stdout", "/dev/stderr")

    def deny(what, detail=""):
        detail = ": " + detail if detail else ""
        raise PermissionError("sandbox: " + what + " is not allowed" + detail)

    def absolute(p, dir_fd=None):
        if type(p) not in (str, bytes, int):
            try:
                p = fspath(p)  # sqlite3.connect reports path-like objects unconverted
            except Exception:
                return None
        if type(p) is int:
            try:
                p = readlink("/proc/self/fd/%d" % p)
            except OSError:
                return None
        elif type(p) is bytes:
            p = p.decode(enc, "surrogateescape")
        elif type(p) is not str:
            return None
        if p.startswith("/"):
            return p
        try:
            base = getcwd() if dir_fd is None or dir_fd < 0 else readlink(
                "/proc/self/fd/%d" % dir_fd)
        except OSError:
            return None
        return base + "/" + p

    def resolve(p):
        out, pending, links = [], p.split("/")[::-1], 0
        while pending:
            name = pending.pop()
            if name in ("", "."):
                continue
            if name == "..":
                if out:
                    out.pop()
                continue
            candidate = "/" + "/".join(out + [name])
            try:
                mode = lstat(candidate).st_mode
            except OSError:
                out.append(name)
                continue
            if not is_link(mode):
                out.append(name)
                continue
            links += 1
            if links > 40:
                return None
            target = readlink(candidate)
            if target.startswith("/"):
                out = []
            pending.extend(target.split("/")[::-1])
        return "/" + "/".join(out)

    def check_write(what, p, dir_fd=None):
        a = absolute(p, dir_fd)
        if a in std_streams:
            return
        r = a and resolve(a)
        if not r or not (r == root or r.startswith(inside_prefix)):
            deny(what + " outside the sandbox directory", a or type(p).__name__)

    def check_read(p):
        a = absolute(p)
        if a is None or "/proc" not in a:
            return
        r = resolve(a) or a
        if r.startswith("/proc/"):
            pid = r[6:].split("/", 1)[0]
            if pid.isdigit() and int(pid) != getpid():
                deny("reading another process's /proc entry", r)

    def on_open(a):
        path, mode, flags = a
        if type(path) is int:
            return
        if (flags or 0) & write_flags or (mode and any(c in mode for c in "wax+")):
            check_write("writing", path)
        else:
            check_read(path)

    def on_symlink(a):
        check_write("creating a link", a[1], a[2])
        target = a[0].decode(enc, "surrogateescape") if type(a[0]) is bytes else a[0]
        if type(target) is not str:
            deny("creating a link", type(target).__name__)
        if not target.startswith("/"):
            target = (absolute(a[1], a[2]) or "/").rpartition("/")[0] + "/" + target
        check_read(target)

    def on_sqlite(a):
        db = a[0]
        if type(db) is bytes:
            db = db.decode(enc, "surrogateescape")
        if type(db) is not str:
            return check_write("opening a database", db)
        if db in ("", ":memory:") or db.startswith("file::memory:") or "mode=memory" in db:
            return
        if db.startswith("file:"):
            db = db[5:].split("?", 1)[0]
            if db.startswith("//"):
                db = "/" + db[2:].split("/", 1)[-1]
        check_write("opening a database", db)

    def on_address(a):
        address = a[1]
        if address is None:
            return
        if type(address) not in (str, bytes) or address[:1] in ("\0", b"\0"):
            deny("network access", repr(address) if type(address) in (tuple, str, bytes) else "")
        check_write("using a unix socket", address)

    def on_kill(a):
        if a[0] not in (0, getpid(), -getpgrp()) and a[1] != 0:
            deny("signalling other processes", str(a[0]))

    def on_killpg(a):
        if a[0] not in (0, getpgrp()):
            deny("signalling other process groups", str(a[0]))

    def forbid(what):
        return lambda a: deny(what)

    processes = forbid("starting processes")
    handlers = {
        "open": on_open,
        "os.remove": lambda a: check_write("removing", a[0], a[1]),
        "os.rmdir": lambda a: check_write("removing", a[0], a[1]),
        "shutil.rmtree": lambda a: check_write("removing", a[0], a[1]),
        "os.mkdir": lambda a: check_write("creating a directory", a[0], a[2]),
        "os.chmod": lambda a: check_write("changing permissions", a[0], a[2]),
        "os.chown": lambda a: check_write("changing ownership", a[0], a[3]),
        "os.utime": lambda a: check_write("changing times", a[0], a[3]),
        "os.truncate": lambda a: check_write("truncating", a[0]),
        "os.setxattr": lambda a: check_write("changing attributes", a[0]),
        "os.removexattr": lambda a: check_write("changing attributes", a[0]),
        "os.rename": lambda a: (check_write("renaming", a[0], a[2]),
                                check_write("renaming", a[1], a[3])),
        "os.link": lambda a: (check_write("linking", a[0], a[2]),
                              check_write("linking", a[1], a[3])),
        "os.symlink": on_symlink,
        "sqlite3.connect": on_sqlite,
        "sqlite3.load_extension": forbid("loading sqlite extensions"),
        "sqlite3.enable_load_extension": lambda a: a[1] and deny("loading sqlite extensions"),
        "socket.__new__": lambda a: a[1] != unix and deny("network access", "family %s" % a[1]),
        "socket.connect": on_address,
        "socket.bind": on_address,
        "socket.sendto": on_address,
        "socket.sendmsg": on_address,
        "os.kill": on_kill,
        "os.killpg": on_killpg,
        # A fresh copy of these modules would bring back the originals replaced below.
        "import": lambda a: a[0] in ("posix", "_posixsubprocess") and deny("re-importing " + a[0]),
    }
    for event in ("getaddrinfo", "gethostbyname", "gethostbyaddr", "getnameinfo", "sethostname"):
        handlers["socket." + event] = forbid("network access")
    for event in ("os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.exec", "os.system",
                  "subprocess.Popen"):
        handlers[event] = processes
    for event in ("resource.setrlimit", "resource.prlimit"):
        handlers[event] = forbid("changing resource limits")
    for event in ("ctypes.dlsym", "ctypes.dlsym/handle", "ctypes.call_function", "ctypes.cdata",
                  "gc.get_objects", "gc.get_referrers", "gc.get_referents"):
        handlers[event] = forbid(event)
    get = handlers.get

    def hook(event, args):
        handler = get(event)
        if handler is not None:
            handler(args)

    real_open = posix.open

    def guarded_open(path, flags, mode=0o777, *, dir_fd=None):
        # The "open" audit event does not carry dir_fd, so check dir_fd-relative writes here.
        if dir_fd is not None and flags & write_flags:
            check_write("writing", path, dir_fd)
        return real_open(path, flags, mode, dir_fd=dir_fd)

    posix.open = sys.modules["os"].open = guarded_open
    _posixsubprocess.fork_exec = lambda *a: processes(a)
    sys.addaudithook(hook)

def _run(mode, target, args):
    import runpy  # deferred: loaded after the hook is installed, like everything the target brings
    if mode == "path":
        sys.argv = [target, *args]
        folder = target.rpartition("/")[0]
        if not target.startswith("/"):
            folder = (posix.getcwd() + "/" + folder).rstrip("/")
        sys.path.insert(0, folder)
        runpy.run_path(target, run_name="__main__")
    elif mode == "module":
        sys.argv = [target, *args]
        sys.path.insert(0, posix.getcwd())
        runpy.run_module(target, run_name="__main__", alter_sys=True)
    else:
        sys.argv = ["-c", *args]
        sys.path.insert(0, "")
        code = compile(target, "<code>", "exec")
        exec(code, {"__name__": "__main__", "__builtins__": __builtins__})

if __name__ == "__main__":
    _install(sys.argv[2])
    del _install
    try:
        _run(sys.argv[3], sys.argv[4], sys.argv[5:])
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as _exc:
        import runpy, traceback
        _tb, _ours = _exc.__traceback__, ("<string>", "<sandbox>", "<frozen runpy>", runpy.__file__)
        while _tb is not None and _tb.tb_frame.f_code.co_filename in _ours:
            _tb = _tb.tb_next
        traceback.print_exception(type(_exc), _exc, _tb or _exc.__traceback__)
        sys.exit(1)

"""Runs first in every sandboxed grading kernel (``--IPKernelApp.exec_files``): watches, reports, restores.

It reports, over a pipe the sandbox launcher reads from outside (so a report cannot be taken back):

* ``import-reference``: an attempt to import ``lib`` or ``autograder`` (they are not in the sandbox);
* ``forbidden-read``: opening a path outside what the notebook may read (``source/``, the gradebook,
  other submissions, the instructor's home), whether or not the sandbox shows it;
* ``network``: an attempt to connect anywhere (the sandbox has no network);
* ``replaced``: a library function (``torch.allclose``, ``torch.randn``, ``builtins``,
  ``course.grading.ship``) replaced by the cell that ran; before every test cell the originals are put
  back (``restored``). None of this decides a grade any more: hidden tests only ship outputs and the
  judge compares them outside the kernel with values that never enter it (``autograder/judge.py``);
* while a test cell runs, what the student's code writes to stderr is shown as ordinary output (the
  judge's verdict is what scores; this keeps the graded copy readable);
* ``exit``: a clean interpreter exit. The launcher reports a kernel that ended without one (``os._exit``).

Each report names the cell by the SHA-256 of its source; the grader maps it to the cell's grade_id.
This file holds no solution and no expected value. It reports; the judge outside decides.
"""


def _channel(fd, state):
    """send(kind, **what): one JSON line to the launcher, each distinct line once."""
    import json
    import os

    sent, write = set(), os.write

    def send(kind, **what):
        line = json.dumps({"kind": kind, "cell": state["cell"], "test": state["test"], **what}) + "\n"
        if line in sent:
            return
        sent.add(line)
        try:
            write(fd, line.encode())
        except OSError:  # the channel was closed from inside: the launcher reports that
            pass

    return send


def _audit(cfg, send, state):
    """The audit hook: reads of forbidden paths, connections, imports of lib."""
    import os

    forbidden = tuple(p.rstrip("/") + "/" for p in cfg["forbidden"])
    allowed = tuple(p.rstrip("/") + "/" for p in [*cfg["allowed"], os.getcwd()])  # its own folder too
    fsdecode = os.fsdecode

    def opened(path):
        path = fsdecode(path) if isinstance(path, bytes) else str(path)
        path = os.path.normpath(path if path.startswith("/") else os.path.join(os.getcwd(), path))
        if path.startswith(forbidden) and not path.startswith(allowed):
            send("forbidden-read", path=path)

    def audit(event, args):
        try:
            if event == "open" and not isinstance(args[0], int):
                opened(args[0])
            elif event == "socket.connect":
                send("network", address=str(args[1])[:200])
            elif event == "import" and str(args[0]).split(".")[0] in ("lib", "autograder"):
                send("import-reference", module=str(args[0]))
        except Exception:  # an audit hook must never break the operation it watches
            pass

    return audit


def _protection(cfg):
    """(replaced, restore, known): which protected names a cell replaced, and putting them back."""
    import builtins
    import importlib
    import sys

    protected = {}  # "module.attr" -> (module name, attribute, original object)
    for modname, attrs in cfg["protected"].items():
        try:
            mod = importlib.import_module(modname)
        except Exception:
            continue
        for attr in attrs:
            if hasattr(mod, attr):
                protected[f"{modname}.{attr}"] = (modname, attr, getattr(mod, attr))
    modules = {m: sys.modules[m] for m in cfg["protected"] if m in sys.modules}
    skip = set(cfg["builtins_skip"])
    originals = {k: v for k, v in vars(builtins).items() if k not in skip}
    known = set()  # replacements already reported

    def replaced():
        out = [f"sys.modules[{m!r}]" for m, mod in modules.items() if sys.modules.get(m) is not mod]
        for name, (modname, attr, obj) in protected.items():
            if getattr(modules.get(modname), attr, None) is not obj:
                out.append(name)
        b = vars(builtins)
        out += [f"builtins.{k}" for k, v in originals.items() if b.get(k) is not v]
        return out

    def restore():
        known.clear()
        sys.modules.update(modules)
        for modname, attr, obj in protected.values():
            setattr(modules[modname], attr, obj)
        vars(builtins).update(originals)

    return replaced, restore, known


def _cell_hooks(test_cells, send, state, protection):
    """IPython's pre_run_cell and post_run_cell: name the cell, restore before tests, report after."""
    import hashlib
    import sys

    replaced, restore, known = protection

    def relabel(name):
        # nbgrader scores a test cell 0 for any stderr output; a student's debug prints or log lines from a
        # function the test calls are no failure: while a test cell runs, its stderr shows as ordinary output
        for s in (getattr(sys, "__stderr__", None), getattr(sys, "stderr", None)):
            if s is not None and hasattr(s, "name") and type(s).__name__ == "OutStream":
                try:
                    s.flush()
                    s.name = name
                except Exception:
                    pass

    def pre_run_cell(info):
        raw = info.raw_cell or ""
        state["cell"] = hashlib.sha256(raw.encode()).hexdigest()[:16]
        state["test"] = state["cell"] in test_cells
        if state["test"]:
            changed = replaced()
            if changed:
                restore()
                send("restored", names=changed)
            relabel("stdout")

    def post_run_cell(result):
        if state["test"]:
            relabel("stderr")
        changed = [n for n in replaced() if n not in known]
        if changed:
            known.update(changed)
            send("replaced", names=changed)
        state["test"] = False

    return pre_run_cell, post_run_cell


def _install(channel, auditor, protection, cell_hooks):
    import atexit
    import json
    import os
    import sys

    from course.settings import ENV_GUARD_CONFIG, ENV_GUARD_FD  # the names the launcher set them under

    cfg = json.loads(open(os.environ[ENV_GUARD_CONFIG]).read())
    state = {"cell": None, "test": False}
    send = channel(int(os.environ[ENV_GUARD_FD]), state)
    audit = auditor(cfg, send, state)
    ip = get_ipython()  # noqa: F821 (exec_files run inside the kernel's shell)
    pre, post = cell_hooks(set(cfg["test_cells"]), send, state, protection(cfg))
    ip.events.register("pre_run_cell", pre)
    ip.events.register("post_run_cell", post)
    sys.addaudithook(audit)
    atexit.register(lambda: send("exit"))
    send("ready")


_install(_channel, _audit, _protection, _cell_hooks)
del _install, _channel, _audit, _protection, _cell_hooks

"""The instructor's command line around nbgrader and papermill (see `autograder --help`).

Grouped by where the code runs:

* the instructor's process: ``cli`` (the commands), ``pipeline`` (the one road of grading, its
  ``Batch``), ``intake``, ``gradebook``, ``report``, ``integrity``, ``examples``,
  ``judge`` (decides each hidden test from the outputs it shipped, against ``lib`` on the same
  inputs), ``release``, ``feedback``, ``site``, ``student``, ``runner``;
* nbgrader's preprocessors, inside ``autograde`` in the same process: ``steps``, ``cells``;
* both sides: ``probes`` (what each hidden test calls, on which inputs: run on ``lib`` here, and, copied
  beside the notebook while it is graded, on the student's functions by ``course.grading.ship``);
* the kernel command nbgrader starts, outside the sandbox: ``sandbox/launch.py``;
* inside the sandboxed kernel, beside the student's code: ``sandbox/guard.py`` only.

Settings (environment names, paths, timeouts, limits) are in ``course/settings.py``.
"""

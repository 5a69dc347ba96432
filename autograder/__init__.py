"""The instructor's command line around nbgrader and papermill (see `autograder --help`).

Grouped by where the code runs:

* the instructor's process: ``cli`` (the commands), ``pipeline`` (the one road of grading, its
  ``Batch``), ``intake``, ``gradebook``, ``report``, ``integrity``, ``examples``, ``references``
  (``lib``'s values for the hidden tests), ``release``, ``feedback``, ``site``, ``student``, ``runner``;
* nbgrader's preprocessors, inside ``autograde`` in the same process: ``steps``, ``cells``;
* the kernel command nbgrader starts, outside the sandbox: ``sandbox/launch.py``;
* inside the sandboxed kernel, beside the student's code: ``sandbox/guard.py`` only.

Settings (environment names, paths, timeouts, limits) are in ``course/settings.py``.
"""

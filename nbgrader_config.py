"""nbgrader configuration. The repository root is the nbgrader course directory.

`autograder` runs nbgrader from this directory, so this file is always read; it points nbgrader's
working state (gradebook, submitted/, autograded/) at a build folder on the command line.
"""
c = get_config()  # noqa: F821 (provided by traitlets when nbgrader loads this file)

c.CourseDirectory.course_id = "dl-course"
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "*.metrics.json", "checkpoints"]

# PyTorch notebooks import slowly and train for a while even in the smoke profile: nbgrader's
# default of 30 s per cell is far too short. This is per cell; `autograder` also bounds a run.
c.Execute.timeout = 600
c.Execute.startup_timeout = 120

# nbgrader scores a test cell 0 if it writes anything to stderr. Warnings and progress bars are
# not failures: drop stderr outputs that are only Python warnings or tqdm bars before scoring.
# (An exception is an `error` output, not stderr, and still fails the cell.)
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = (
    r"\A\s*(?:(?:"
    r"\S.*:\d+: [A-Za-z]*Warning: .*"  # warnings.warn(...) first line: file:line: XWarning: msg
    r"|  .*"  # the source line that Python prints under it (indented)
    r"|.*\d+%\|.*\|.*"  # a tqdm progress bar
    r")\s*)*\Z"  # and blank output (tqdm's closing carriage returns)
)

# A test cell a student deleted is put back (from the gradebook) and graded, not skipped; the
# autograder's integrity report says it was deleted.
c.OverwriteCells.add_missing_cells = True

# Students see this in every cell they must fill in.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

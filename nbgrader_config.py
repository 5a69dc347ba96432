"""nbgrader configuration. The repository root is the nbgrader course directory.

`autograder` runs nbgrader from this directory, so this file is always read; it points nbgrader's
working state (gradebook, submitted/, autograded/) at a build folder on the command line.
"""

import os
import sys

from course.settings import CELL_TIMEOUT_S, KERNEL_STARTUP_TIMEOUT_S

c = get_config()  # noqa: F821 (provided by traitlets when nbgrader loads this file)

# nbgrader runs the `alembic` command to make or upgrade a gradebook, looked up on PATH: without an
# activated virtual environment, `.venv/bin/nbgrader` (and the Formgrader) fail on a new gradebook,
# and generate_assignment deletes the release notebook before it fails. Put this interpreter's own
# scripts first on PATH, so nbgrader works from any shell.
_scripts = os.path.dirname(sys.executable)
if _scripts not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = os.pathsep.join([_scripts, os.environ.get("PATH", "")])

c.CourseDirectory.course_id = "dl-course"
c.CourseDirectory.ignore = [
    ".ipynb_checkpoints",
    "*.pyc",
    "__pycache__",
    "feedback",
    "*.metrics.json",
    "checkpoints",
    ".judge",  # the judge's seed and a submission's shipped outputs: never copied into feedback
]

# PyTorch notebooks import slowly and train for a while even in the smoke profile: nbgrader's
# default of 30 s per cell is far too short. This is per cell; `autograder` also bounds a run.
c.Execute.timeout = CELL_TIMEOUT_S
c.Execute.startup_timeout = KERNEL_STARTUP_TIMEOUT_S
# Once the last cell has run and its outputs are in, the kernel has nothing left to do: stop it at once
# instead of asking it to shut down and waiting (0.6 s of every submission, results/README.md).
c.Execute.shutdown_kernel = "immediate"

# nbgrader's autograde steps, stock ones included (setting a list replaces it), with the course's two
# (autograder/steps.py): the student's own outputs of given cells are kept before ClearOutput and put
# back, labelled, above the grader's re-run, for whoever marks the written answers.
c.Autograde.sanitize_preprocessors = [
    "autograder.steps.StashSubmittedOutputs",
    "nbgrader.preprocessors.ClearOutput",
    "nbgrader.preprocessors.DeduplicateIds",
    "nbgrader.preprocessors.OverwriteKernelspec",
    "nbgrader.preprocessors.OverwriteCells",
    "nbgrader.preprocessors.CheckCellMetadata",
]
# The judge (autograder/judge.py): a seed before the run, each test's probe given to the kernel as its cell
# starts and its outputs sealed out of the kernel's reach as it ends; after the run, every output made
# inert and each test cell's score set by the judge outside the kernel, from the plain data its hidden
# test shipped; a cell the judge could not decide is left for a person, not scored 0.
c.Autograde.autograde_preprocessors = [
    "autograder.steps.PrepareProbes",
    "autograder.steps.JudgedExecute",  # nbgrader's Execute, sealing each test's outputs when it ends
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "autograder.steps.InertOutputs",
    "autograder.steps.ApplyVerdicts",
    "autograder.steps.RestoreSubmittedOutputs",
    "nbgrader.preprocessors.SaveAutoGrades",
    "autograder.steps.FlagJudgeErrors",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]

# nbgrader scores a test cell 0 if it writes anything to stderr. The judged test cells are scored by the
# judge's verdict, put first (ApplyVerdicts); for any other test cell, warnings and progress bars are not
# failures: drop stderr outputs that are only Python warnings or tqdm bars before scoring.
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

# Feedback that hides the hidden tests (nbgrader shows them by default, issues #917 and #1363): nbgrader's
# own steps, then the hidden regions and the mark schemes of the written questions cleared as for the
# release (autograde restores both from the gradebook), then test-cell tracebacks (which quote the
# hidden code) cut to "ErrorName: message". See autograder/feedback.py.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
    "nbgrader.preprocessors.ClearHiddenTests",
    "nbgrader.preprocessors.ClearMarkScheme",
    "autograder.feedback.RedactTestTracebacks",
]

# Students see this in every cell they must fill in.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

#!/usr/bin/env bash
# A student's environment: JupyterLab, nbgrader's student extensions (assignment list, validate) and the
# `course` package; no reference solutions (lib) and no grader (autograder). The instructor builds the
# wheel with `autograder student-wheel` and hands it out (course site, a package index, the hub image).
#
#   bash student/install.sh [WHEEL] [VENV]     # defaults: build/student/dl_course_student-*.whl, .venv-student
#   bash student/install.sh --extensions-only VENV   # only switch the instructor's extensions off
set -euo pipefail
if [ "${1:-}" = "--extensions-only" ]; then  # switch the extensions of an existing environment (tests do this)
  venv="${2:?usage: install.sh --extensions-only VENV}"
else
  wheel="${1:-$(ls build/student/dl_course_student-*.whl 2>/dev/null | tail -n 1)}"
  venv="${2:-.venv-student}"
  if [ -z "$wheel" ] || [ ! -f "$wheel" ]; then
    echo "no student wheel: pass its path, or build one with \`autograder student-wheel\`" >&2
    exit 2
  fi
  python3.11 -m venv "$venv"
  "$venv/bin/python" -m pip install -q "$wheel"
fi
# nbgrader installs every extension; students keep the assignment list and validate, not the instructor's
for ext in formgrader course-list create-assignment; do
  "$venv/bin/jupyter" labextension disable --level=sys_prefix "@jupyter/nbgrader:$ext" >/dev/null
done
for ext in formgrader course_list; do
  "$venv/bin/jupyter" server extension disable --sys-prefix "nbgrader.server_extensions.$ext" >/dev/null
done
echo "student environment ready: $venv/bin/jupyter lab"

"""nbgrader's gradebook, through nbgrader's own API: made, cached, graded into, merged, exported.

``nbgrader generate_assignment`` records each assignment and its test cells in a gradebook; it takes
about 7 s and gives the same gradebook from the same sources, so it runs once per *fingerprint* (the
sources, ``nbgrader_config.py``, nbgrader's version, the reference fixtures and ``lib``), into
``build/gradebooks/<fingerprint>``; every batch, shard and merge copies that gradebook and release.
``api`` gives nbgrader's ``NbGraderAPI`` over a work folder, configured from ``nbgrader_config.py``
plus the batch's own settings, so that ``autograde`` runs in this process, one submission at a time.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import warnings
from pathlib import Path

from nbgrader.api import Gradebook

from course.settings import GRADEBOOKS_DIR, NBGRADER_CONFIG, course_id

from .nbg import REPO, fresh_work_dir, notebooks
from .release import generate


def db_url(work: Path) -> str:
    return f"sqlite:///{Path(work).resolve() / 'gradebook.db'}"


def open_gradebook(root: Path, work: Path) -> Gradebook:
    return Gradebook(db_url(work), course_id(root))


def fingerprint(root: Path, names: list[str]) -> str:
    """What a gradebook depends on: the source notebooks, nbgrader and its config, the probes and lib."""
    import nbgrader as nbgrader_package

    h = hashlib.sha256(nbgrader_package.__version__.encode())
    files = [nb for name in names for nb in notebooks(root, name)] + [root / NBGRADER_CONFIG]
    files += sorted((REPO / "autograder" / "probes").glob("*.py")) + sorted((REPO / "lib").glob("*.py"))
    for f in files:
        h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()


def cached(root: Path, names: list[str], fp: str | None = None) -> Path | None:
    """``<root>/build/gradebooks/<fingerprint>``, generated there once; None where it cannot be written."""
    folder = root / GRADEBOOKS_DIR / (fp or fingerprint(root, names))[:24]
    if (folder / "gradebook.db").exists():
        return folder
    try:
        staging = fresh_work_dir(folder.with_name(f".{folder.name}.{os.getpid()}"))
    except OSError as e:
        print(f"(no gradebook cache in {folder.parent}: {e})", flush=True)
        return None
    try:
        generate(root, staging, names)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)  # a failed generation leaves nothing behind
        raise
    try:
        os.rename(staging, folder)  # atomic: a shard that lost the race keeps the winner's copy
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def prepare(root: Path, work: Path, names: list[str], fp: str | None = None) -> None:
    """Put in ``work`` the gradebook (and release/) of ``names``, from the cache or generated there."""
    folder = cached(root, names, fp)
    if folder is None:
        generate(root, work, names)
        return
    shutil.copy2(folder / "gradebook.db", work / "gradebook.db")
    shutil.copytree(folder / "release", work / "release", dirs_exist_ok=True)


def api(root: Path, work: Path, overrides: dict[str, dict] | None = None):
    """nbgrader's API over ``work``: ``nbgrader_config.py`` of ``root``, then ``overrides`` (Class -> trait
    -> value).
    """
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader(NBGRADER_CONFIG, path=str(root)).load_config()
    extra = Config()
    extra.CourseDirectory.root = str(Path(work).resolve())
    extra.CourseDirectory.source_directory = str(Path(root).resolve() / "source")
    extra.CourseDirectory.db_url = db_url(work)
    exchange = Path(work).resolve() / "exchange"  # the API looks for one when it starts; grading uses none
    exchange.mkdir(exist_ok=True)
    extra.Exchange.root = str(exchange)
    for cls, traits in (overrides or {}).items():
        for trait, value in traits.items():
            extra[cls][trait] = value
    config.merge(extra)
    log = logging.getLogger("autograder.nbgrader")
    log.propagate, log.level = False, logging.INFO  # its lines go to each submission's log, not the terminal
    coursedir = CourseDirectory(config=config, log=log)
    return NbGraderAPI(coursedir=coursedir, config=config, log=log)


def export(root: Path, work: Path, to: Path) -> None:
    """``nbgrader export``'s CSV, written by nbgrader's own plugin in this process."""
    from nbgrader.plugins import CsvExportPlugin

    with open_gradebook(root, work) as gb:
        CsvExportPlugin(to=str(to)).export(gb)


def copy_grades(root: Path, shard: Path, merged: Gradebook, names: list[str]) -> None:
    """Every submission of ``names`` in the shard's gradebook, with grades and comments, into ``merged``."""
    with warnings.catch_warnings(), open_gradebook(root, shard) as gb:
        # nbgrader's API warns that SQLAlchemy skips an autoflush while it adds a submission: noise
        warnings.filterwarnings("ignore", message=".*not in session.*")
        for name in names:
            for sub in gb.find_assignment(name).submissions:
                student = sub.student.id
                merged.update_or_create_student(
                    student, last_name=sub.student.last_name, first_name=sub.student.first_name
                )
                merged.update_or_create_submission(name, student, timestamp=sub.timestamp)
                for nb in sub.notebooks:
                    for g in nb.grades:
                        mg = merged.find_grade(g.name, nb.name, name, student)
                        mg.auto_score, mg.manual_score = g.auto_score, g.manual_score
                        mg.extra_credit, mg.needs_manual_grade = g.extra_credit, g.needs_manual_grade
                    for c in nb.comments:
                        mc = merged.find_comment(c.name, nb.name, name, student)
                        mc.auto_comment, mc.manual_comment = c.auto_comment, c.manual_comment
        merged.db.commit()

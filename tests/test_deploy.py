"""deploy/: the container image, Slurm array, Kubernetes Indexed Job and JupyterHub configuration agree
with the command line they drive (the shards themselves are tested as processes in test_shards.py)."""

import re
import subprocess

import yaml
from traitlets.config import Config

from autograder.nbg import REPO

D = REPO / "deploy"


def _config(path) -> Config:
    c = Config()
    exec(path.read_text(), {"get_config": lambda: c})
    return c


def test_kubernetes_indexed_job_runs_one_shard_per_index_and_the_merge_takes_them_all():
    job = yaml.safe_load((D / "kubernetes" / "grade-job.yaml").read_text())
    spec = job["spec"]
    n = spec["completions"]
    assert job["kind"] == "Job" and spec["completionMode"] == "Indexed" and spec["parallelism"] == n
    command = spec["template"]["spec"]["containers"][0]["command"]
    assert command[:2] == ["sh", "-c"]
    args = command[2].split()
    assert (
        args[:2] == ["autograder", "grade"]
        and args[args.index("--shard") + 1] == f"$(JOB_COMPLETION_INDEX)/{n}"
    )
    assert "$(JOB_COMPLETION_INDEX)" in args[args.index("--work") + 1]
    assert command[2].endswith("|| [ $? -eq 3 ]")  # a refused entry (exit 3) does not fail the shard
    merge = yaml.safe_load((D / "kubernetes" / "merge-job.yaml").read_text())
    command = merge["spec"]["template"]["spec"]["containers"][0]["command"][-1]
    assert "autograder merge" in command and f"0 {n - 1}" in command


def test_slurm_scripts_parse_and_pass_the_array_index_as_the_shard():
    for script in ("grade.sbatch", "merge.sbatch"):
        subprocess.run(["bash", "-n", str(D / "slurm" / script)], check=True)
    text = (D / "slurm" / "grade.sbatch").read_text()
    assert '--shard "$i/$n"' in text and "SLURM_ARRAY_TASK_ID" in text and "SLURM_ARRAY_TASK_COUNT" in text


def test_image_matches_the_project():
    text = (D / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11", text, re.M) and "bubblewrap" in text and "pip install" in text
    assert 'ENTRYPOINT ["autograder"]' in text


def test_jupyterhub_config_serves_this_course():
    course_id = _config(REPO / "nbgrader_config.py").CourseDirectory.course_id
    hub = _config(D / "jupyterhub" / "jupyterhub_config.py")
    assert [s["name"] for s in hub.JupyterHub.services] == [course_id]
    assert {f"formgrade-{course_id}", f"nbgrader-{course_id}"} <= set(hub.JupyterHub.load_groups)
    users = _config(D / "jupyterhub" / "nbgrader_config.py")
    assert users.Exchange.root and users.Exchange.path_includes_course

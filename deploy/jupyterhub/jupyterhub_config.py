"""JupyterHub for the course, after nbgrader's documented setup ("Using nbgrader with JupyterHub").

Students log in and get a JupyterLab with the dl-course-student wheel (course, nbgrader's assignment
list and validate; no lib, no autograder); the instructors' group also gets the course's formgrader,
run as a hub service from the course directory. One exchange directory, shared through the
filesystem. On a cluster, Zero to JupyterHub takes the same settings in its config.yaml (hub.services,
hub.loadRoles, singleuser.image: an image built with student/install.sh).
"""

c = get_config()  # noqa: F821

COURSE_ID = "dl-course"  # as in nbgrader_config.py
GRADER = f"grader-{COURSE_ID}"

c.Authenticator.allowed_users = {"instructor1", "instructor2", "student1", "student2"}
c.Authenticator.admin_users = {"instructor1"}
c.JupyterHub.load_groups = {
    f"instructors-{COURSE_ID}": {"users": ["instructor1", "instructor2"]},
    f"formgrade-{COURSE_ID}": {"users": ["instructor1", "instructor2", GRADER]},
    f"nbgrader-{COURSE_ID}": {"users": ["student1", "student2"]},
}
c.JupyterHub.services = [
    {
        "name": COURSE_ID,
        "url": "http://127.0.0.1:9999",
        "command": ["jupyterhub-singleuser", f"--group=formgrade-{COURSE_ID}", "--debug"],
        "user": GRADER,
        "cwd": f"/home/{GRADER}/{COURSE_ID}",  # a clone of this repository, with `pip install -e .`
        "api_token": "replace-with-a-secret-token",
    }
]
c.JupyterHub.load_roles = [
    {
        "name": f"formgrade-{COURSE_ID}",
        "groups": [f"formgrade-{COURSE_ID}"],
        "services": [COURSE_ID],
        "scopes": [f"access:services!service={COURSE_ID}"],
    },
    {"name": "server", "scopes": ["inherit"]},  # nbgrader's course list asks the hub for the user's groups
]
c.Spawner.default_url = "/lab"
# Every user's nbgrader reads /etc/jupyter/nbgrader_config.py (this folder's nbgrader_config.py):
# the shared exchange, with the course id in its paths.

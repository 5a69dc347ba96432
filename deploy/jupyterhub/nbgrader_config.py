"""nbgrader settings for every user of the hub: install as /etc/jupyter/nbgrader_config.py.

The exchange is a folder all users can write to (chmod 777; nbgrader keeps what each student may read
apart by file permissions). The course directory's own nbgrader_config.py adds the course settings.
"""

c = get_config()  # noqa: F821

c.Exchange.root = "/srv/nbgrader/exchange"
c.Exchange.path_includes_course = True

"""The instructor's command line around nbgrader and papermill (see `autograder --help`)."""

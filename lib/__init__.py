"""Reference implementations of every exercise in the course.

For instructors and the grader only: hidden tests compare student code against these.
Nothing in `course` (what students import) may import this package.
"""

"""Instructor and maintainer tools, run as scripts: ``python tools/run_course.py``."""

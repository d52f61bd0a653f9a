"""Use-cases: what a command or a dashboard button asks the system to do, in one place.

The command line and the dashboard parse and render; the functions here do the work, so both
front ends behave the same and are tested without either.
"""

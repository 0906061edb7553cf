"""Test doubles: stand-ins for hardware that tests and developers run against.

Nothing in the runtime imports this package.
"""

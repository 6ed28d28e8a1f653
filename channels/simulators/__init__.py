"""Local simulators of the platforms, speaking their real wire formats.

Tests start them on 127.0.0.1; `scrm demo` uses them as the customers' apps.
"""

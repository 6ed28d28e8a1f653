"""Nurture campaigns: definitions, audience and enrolment, planning due steps, results; events."""

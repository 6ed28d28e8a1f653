"""Reps' follow-ups: tasks with a due time, their reminders, and the rules that make them."""

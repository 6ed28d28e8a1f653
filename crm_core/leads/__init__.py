"""The sales pipeline: leads, routing them to reps and teams, scoring, stages, import and export."""

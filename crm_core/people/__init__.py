"""The company's people: users and roles, the reps' actions, signing in to the panel, their WeCom
customers moved to a colleague (succession)."""

"""The council: verifies reports, applies the treaty, keeps the decision log, streams it."""

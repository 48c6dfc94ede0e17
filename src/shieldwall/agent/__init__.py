"""The agent: tails logs (``sources``), detects attacks, bans locally, reports to the council
and enforces the alliance's decisions."""

"""Wire formats: reports members send, decisions the council streams, and their signatures."""

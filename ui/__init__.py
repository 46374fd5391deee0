"""How people use footage: the command line (and the console, later)."""

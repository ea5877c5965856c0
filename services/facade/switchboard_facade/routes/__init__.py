"""HTTP routes of the facade, one module per surface."""

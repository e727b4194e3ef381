"""Recording, replay and paper execution."""

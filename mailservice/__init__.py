"""mailservice: e-mail-centric service for a department information office."""

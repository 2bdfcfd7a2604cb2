"""Applications: one module per ``recon`` command, built from the engine and eval primitives."""

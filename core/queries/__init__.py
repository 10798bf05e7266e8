"""Read and act functions for the app and the notebooks; each takes the viewer and enforces access."""

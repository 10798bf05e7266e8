"""Read and act functions for the app and notebooks; each takes the viewer and checks access."""

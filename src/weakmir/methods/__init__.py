"""One module per paper: its losses, its step functions and its experiment."""

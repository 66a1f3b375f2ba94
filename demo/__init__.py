"""The end-to-end demo that `make demo` runs on the embedded local cloud."""

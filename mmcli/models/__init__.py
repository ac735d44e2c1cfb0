"""Torch modules, one readable file per family, and the loop that trains them."""

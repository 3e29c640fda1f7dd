"""Operator layer: the ``scpd`` command line."""

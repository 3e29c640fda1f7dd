"""Quorum analysis: does a network of quorum sets keep its promises?

``fbas`` holds the network model and its loaders, ``engine`` the compact
bitset form every search runs on, ``quorums``/``blocking``/``splitting`` the
searches, ``report`` the whole analysis as an operator reads it, and
``local`` the check a node runs on its own configuration. Base layer: pure
functions, no I/O except the explicit ``load_*`` loaders.
"""

from scpd.analysis.fbas import AnalysisInputError, Fbas, Organizations, load_fbas, load_organizations
from scpd.analysis.local import LocalReport, check_local_quorum
from scpd.analysis.report import Analysis, analyze

__all__ = [
    "Analysis",
    "AnalysisInputError",
    "Fbas",
    "LocalReport",
    "Organizations",
    "analyze",
    "check_local_quorum",
    "load_fbas",
    "load_organizations",
]

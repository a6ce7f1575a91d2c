"""huizhi_seeds: demo data built from the Daxing action plan, and its loader.

``load_demo(host)`` commits generated rows for every declared ledger it knows (sensing devices,
city-management cases) as version 1; the generators are deterministic by seed. Figures and their
line numbers in the plan are in :mod:`huizhi_seeds.daxing`.
"""

from huizhi_seeds.loader import DEFAULT_SEED, GENERATORS, generate, load_demo

__all__ = ["DEFAULT_SEED", "GENERATORS", "generate", "load_demo"]

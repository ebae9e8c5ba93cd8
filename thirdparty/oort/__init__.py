"""Oort participant selection (Lai et al., OSDI 2021)."""
from thirdparty.oort.oort import OortConfig, OortSelector

__all__ = ["OortConfig", "OortSelector"]

"""PyramidFL participant selection and per-client work shaping (Li et al., MobiCom 2022)."""
from thirdparty.pyramidfl.pyramidfl import PyramidFLConfig, PyramidFLSelector

__all__ = ["PyramidFLConfig", "PyramidFLSelector"]

"""Bliss client selection: utility predicted from device state and history (after Bossbap/Bliss, corrected)."""
from thirdparty.bliss.bliss import BlissConfig, BlissSelector

__all__ = ["BlissConfig", "BlissSelector"]

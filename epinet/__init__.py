"""EpiNet: continual learning with salience-driven episodic memory and recall.

Plain PyTorch. The Avalanche adapter lives in ``epinet.plugin`` and is not
imported here, so ``import epinet`` does not import Avalanche.
"""

from epinet.backbones import BACKBONES, make_backbone
from epinet.decoder import MixtureOfExpertsDecoder
from epinet.memory import EpisodicMemory, class_balanced_top
from epinet.model import EpiNetConfig, EpiNetModel
from epinet.recall import RecallEngine
from epinet.salience import Clock, LogicalClock, WallClock, decayed_salience, make_clock

__all__ = [
    "BACKBONES",
    "Clock",
    "EpiNetConfig",
    "EpiNetModel",
    "EpisodicMemory",
    "LogicalClock",
    "MixtureOfExpertsDecoder",
    "RecallEngine",
    "WallClock",
    "class_balanced_top",
    "decayed_salience",
    "make_backbone",
    "make_clock",
]

from wmil.models.baby import BabyModel
from wmil.models.core import TransformerCore
from wmil.models.encoder import StateEncoder
from wmil.models.heads import ActionHead, ValueHead, WorldModelHead

__all__ = ["ActionHead", "BabyModel", "StateEncoder", "TransformerCore", "ValueHead", "WorldModelHead"]

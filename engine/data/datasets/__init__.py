"""``from dassl.data.datasets import X`` ports as ``from engine.data.datasets import X``."""
from .base_dataset import Datum, DatasetBase
from .build import DATASET_REGISTRY, build_dataset

__all__ = ["DATASET_REGISTRY", "Datum", "DatasetBase", "build_dataset"]

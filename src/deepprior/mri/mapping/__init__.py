"""Quantitative MRI: parameter maps (T2, T1) straight from undersampled multi-coil k-space, or from magnitude
images. A reconstruction is (operator, parameterization, loss, callbacks) as everywhere in deepprior: the
operator is the signal model followed by each contrast's SENSE (:class:`~.recon.MapForward`), the
parameterization pixels (``model-tv``) or a generator whose output channels are the maps (``dip``).

>>> from deepprior.mri.mapping import T2Decay, brain_phantom, reconstruct_map, simulate_map
>>> md = simulate_map(T2Decay([10, 30, 50]), brain_phantom(32), coils=2, accel=2, center=4)
>>> sorted(reconstruct_map(md, "fit", device="cpu").maps)
['M0', 'T2']
"""

from .data import MapData, load_map_data, map_metrics, save_map_data, signal_axis, simulate_map
from .images import map_images
from .models import InversionRecovery, SignalModel, T2Decay, VariableFlipAngle, build_model
from .output import save_map_figure, save_maps
from .phantom import TissueMaps, brain_phantom, load_maps
from .recon import METHODS, MapForward, MapResult, reconstruct_map

__all__ = ["MapData", "load_map_data", "map_metrics", "save_map_data", "signal_axis", "simulate_map", "map_images",
           "InversionRecovery", "SignalModel", "T2Decay", "VariableFlipAngle", "build_model", "save_map_figure",
           "save_maps", "TissueMaps", "brain_phantom", "load_maps", "METHODS", "MapForward", "MapResult",
           "reconstruct_map"]

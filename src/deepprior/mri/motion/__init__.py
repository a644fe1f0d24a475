"""Motion correction: rigid per-shot motion estimated jointly with the image from multi-shot k-space."""

from .operator import MotionSENSE, RigidMotion, WithMotion
from .rigid import check_motion, rigid, rigid_adjoint
from .simulate import KINDS, motion_curve, simulate_motion

__all__ = ["KINDS", "MotionSENSE", "RigidMotion", "WithMotion", "check_motion", "motion_curve", "rigid",
           "rigid_adjoint", "simulate_motion"]

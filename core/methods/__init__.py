"""Every CAM method of the field in one registry (see ``registry``); importing this package registers them.

>>> from core.methods import METHODS
>>> [m.label for m in METHODS.values()][:3]
['CAM', 'Grad-CAM', 'Grad-CAM++']
"""

# registered in this order (menus list them so): the one-pass methods first, FullGrad, then the slow ones
from core.methods import gradient  # noqa: F401  (registers the methods)
from core.methods import fullgrad, noisy, perturbation  # noqa: F401, E402
from core.methods.fusion import fuse_layer_maps
from core.methods.perturbation import PerturbationContext, Stopped
from core.methods.registry import (ALIASES, COST_CLASSES, DEFAULT_METHODS, INPUT, METHODS, Context,
                                   InputContext, Method, method, one_pass, resolve)

__all__ = ["METHODS", "Method", "Context", "InputContext", "INPUT", "PerturbationContext", "Stopped", "method",
           "one_pass", "fuse_layer_maps", "COST_CLASSES", "ALIASES", "resolve", "DEFAULT_METHODS"]

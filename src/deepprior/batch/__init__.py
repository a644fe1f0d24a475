"""Many images, slices and studies in one command, on Ray: an embedded local instance by default, a cluster at
``--ray-address``. :func:`run` is the Python entry; ``deepprior batch`` the command line; docs/batch.md the guide.

* :mod:`.items` — inputs, manifests and per-item seeds; :mod:`.worker` — one item (or one group) on a worker;
* :mod:`.runner` — scheduling, the manifest, retries; :mod:`.stack` — per-slice results into volumes.
"""

from .items import Item, expand_inputs, item_seed
from .manifest import MANIFEST, read_manifest
from .runner import run

__all__ = ["run", "Item", "item_seed", "expand_inputs", "read_manifest", "MANIFEST"]

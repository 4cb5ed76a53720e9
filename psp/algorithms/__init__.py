"""PSP, its ablations and the controls; importing this package registers them."""

from psp.algorithms import controls, psp, recipes  # noqa: F401  (registration side effects)

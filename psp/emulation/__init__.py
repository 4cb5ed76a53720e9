"""GPU behaviour emulated on a CPU, for tests: CUDA's device rules (``device``), reduced-precision error
(``precision``)."""

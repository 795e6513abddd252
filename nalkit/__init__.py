"""nalkit: Noise Attention Learning (Lu, Bo, He, NeurIPS 2022) for PyTorch.

Public entry points:

- :func:`nalkit.losses.nal_loss` -- the NAL loss.
- :func:`nalkit.models.with_attention` -- wrap a backbone with a class head and an attention branch.
- :func:`nalkit.noise.inject_noise` -- label noise with the DivideMix conventions.
- :func:`nalkit.train.train` -- one trainer for NAL and the baselines, writing a run record.
- :func:`nalkit.results.load_runs` -- read run records as pandas frames.
"""

__version__ = "0.1.0"

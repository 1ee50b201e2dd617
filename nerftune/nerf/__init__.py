"""The adapter over nerfstudio: the only package of nerftune that imports it."""

import warnings

# nerfstudio 1.1.5 on current torch warns about deprecated calls on every step; they say nothing about the trial
warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=UserWarning, module=r"nerfstudio\.")

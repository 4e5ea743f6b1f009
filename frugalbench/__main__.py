import os
import sys

# The harness's own torch work (scoring) must not spin OpenMP threads on the cores a model process
# is being timed on; set before anything loads torch.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

from frugalbench.cli import main  # noqa: E402

sys.exit(main())

import sys

from frugalbench.cli import main

sys.exit(main())

import sys

from nerftune.cli import main

sys.exit(main())

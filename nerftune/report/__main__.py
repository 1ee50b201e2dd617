import sys

from nerftune.report import main

sys.exit(main())

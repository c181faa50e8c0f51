import sys

from skiller.cli import main

sys.exit(main())

import sys

from wopibridge.cli import main

sys.exit(main())

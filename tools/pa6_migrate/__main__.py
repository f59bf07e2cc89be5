import sys

from tools.pa6_migrate.cli import main

sys.exit(main())

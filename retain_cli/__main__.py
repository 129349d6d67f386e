import sys

from retain_cli.main import main

sys.exit(main())

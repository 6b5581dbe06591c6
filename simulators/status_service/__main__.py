"""``python -m simulators.status_service``: serve in the foreground."""

import sys

from simulators.status_service.standalone import main

if __name__ == "__main__":
    sys.exit(main())

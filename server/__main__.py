"""python -m server == crm-caldav."""

from server.cli import main

main()

"""``python -m rdptrust``: the same as the ``rdptrust`` command."""

from rdptrust.cli.main import main

if __name__ == "__main__":
    main()

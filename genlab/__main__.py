"""``python -m genlab`` (and ``accelerate launch -m genlab``) runs the CLI."""

from genlab.cli import main

if __name__ == "__main__":
    main()

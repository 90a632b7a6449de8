"""`python -m kws …` (and `torchrun -m kws …`) run the same CLI as the `kws` command."""

from .cli import main

main()

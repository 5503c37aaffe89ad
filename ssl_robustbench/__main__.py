"""``python -m ssl_robustbench`` = ``robustbench`` (so ``torchrun -m ssl_robustbench pretrain …`` works)."""

from ssl_robustbench.cli import main

if __name__ == "__main__":
    main()

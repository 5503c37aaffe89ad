#!/usr/bin/env bash
# Rebuilds this project's result store (results/cards and the leaderboard rendered from them) from scratch:
# every bundled checkpoint on the embedded test split (2,000 images, the adversarial suite too), all suites it has
# cards for, one eval each (each suite's card carries its own protocol hash, so the clean card of a clean+c+pd+e
# eval is the clean card); ACL and its SimCLR control also under SLF stretched 10-fold
# (adv.epoch_scale=10: the published 25 epochs are 250 steps on 5,000 images and leave the head underfit).
# About an hour on 2 CPU cores. Usage: bash results/regenerate.sh [RUNS_DIR]
# N_ADV=500 attacks fewer images; SLF10=0 leaves out the two SLF x10 runs (what the shipped store of 2026-12-06 used).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-runs/results}
N_ADV=${N_ADV:-2000}
SLF10=${SLF10:-1}
BIN=.venv/bin
rm -rf "$RUNS" results/cards results/evidence results/heads results/verifications results/.cache results/plots \
  results/LEADERBOARD.md results/leaderboard.html results/LEADERBOARD.tex
mkdir -p results/cards
eval_and_submit() {  # run name, model, suites, extra options
  local run=$1 model=$2 suites=$3; shift 3
  "$BIN/robustbench" eval --model "$model" --suite "$suites" --device cpu --out "$RUNS/$run" "$@"
  "$BIN/robustbench" submit "$RUNS/$run" --to results
}
for model in embedded-simclr-tinyresnet embedded-random-tinyresnet; do
  eval_and_submit "$model" "$model" clean,c,pd,e,adversarial --n-adv "$N_ADV"
done
for model in embedded-simclr-mpd-tinyresnet embedded-simclr-lcm-tinyresnet; do
  eval_and_submit "$model" "$model" clean,c,pd,e
done
# the adversarial checkpoints and their matched standard-SSL control (32-px recipe), on the whole test split
for model in embedded-simclr32-tinyresnet embedded-acl-tinyresnet embedded-astra-tinyresnet; do
  eval_and_submit "$model" "$model" clean,adversarial --n-adv "$N_ADV"
done
for model in embedded-simclr32-tinyresnet embedded-acl-tinyresnet; do  # ASTrA too when time allows (~25 min)
  [ "$SLF10" = 1 ] || break
  eval_and_submit "$model-slf10" "$model" adversarial --n-adv "$N_ADV" --set adv.epoch_scale=10
done
# every card re-run on a seeded sample (3 conditions x 100 images) from its named weights; outcomes in verifications/
"$BIN/robustbench" verify results/cards/*.json --store results --images 100 --conditions 3
"$BIN/robustbench" leaderboard build --store results --format latex

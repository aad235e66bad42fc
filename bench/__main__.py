"""``python -m bench``: run the benchmarks and write bench/results.md and bench/results.json."""

from bench.run import main

raise SystemExit(main())

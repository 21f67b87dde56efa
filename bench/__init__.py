"""Benchmarks: each ``bench_*.py`` module has ``main()`` and writes its section of
docs/benchmarks.md with :func:`bench.report.write_section`. Run all: ``make bench``."""

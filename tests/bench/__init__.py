"""The benchmark (`make bench`): speed, memory and statement counts of a cycle at scale.

Modules are named ``bench_*.py`` and ``_*.py`` so that pytest never collects them.
"""

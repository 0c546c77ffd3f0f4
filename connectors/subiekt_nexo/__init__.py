"""``source.kind: subiekt_nexo``: reads contractors from InsERT Subiekt nexo's SQL database.

``config.py`` (the YAML keys, import-cheap), ``tables.py`` (every table and column name,
written once), ``query.py`` (the SQL), ``rows.py`` (rows to records), ``source.py`` (the
connector), ``catalogue.py`` (``doctor``'s table checks and ``--discover``), ``fake.py`` (a
nexo-shaped database for tests and the demo). Nothing here is imported until the kind is
used, so this module stays free of SQLAlchemy.
"""

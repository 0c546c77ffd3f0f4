"""Any SQL ERP as a source (``source.kind: sql``): the admin's SELECT names the fields.

The admin writes one SELECT whose column aliases are the contractor's fields (``key``,
``symbol``, ``name``, ``email``...), optionally a second SELECT for contact persons, and
the connector wraps both as subqueries, streams them ordered by key and merge-joins them.
``config`` checks what can be checked offline (one read-only statement, bound parameters);
``SqlSource.check`` checks the rest against the live database (the aliases, syntax errors
with the line they are on). Importing this package loads no database driver.
"""

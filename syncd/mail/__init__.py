"""Mail: the outbox mailer, its templates, its transports and bounce tracking.

This package's init imports nothing, so a command imports only the part it uses:
``check-config`` renders the templates (``render``: Jinja2) without the mailer, and
``status`` reads bounces (``bounces``) without either.

- ``mailer``: sends the due mail of the outbox (``send_due_mail``, ``mail_after_sync``,
  ``deliver_due``); its docstring states the delivery guarantee.
- ``render``: templates to ``EmailMessage``; ``check_templates`` for ``check-config``.
- ``transports``: SMTP or a directory of .eml files, one session a run.
- ``bounces``: delivery reports in the bounce mailbox matched to the outbox.
- ``_batch``, ``_ledger``, ``_passwords``, ``_rules``, ``_queue``, ``_smtp``, ``_mime``,
  ``_dsn``, ``_imap``: their private parts.
"""

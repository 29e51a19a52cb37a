"""People and their digests: sign-up with double opt-in, preferences, the outbox and its sender.

Flask-free: may import ``feeds``, never ``flask``, ``syndicate`` or ``config``;
configuration arrives as plain values (``subscribers.settings.MailSettings``).
"""

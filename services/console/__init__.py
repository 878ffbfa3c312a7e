"""The web console: its own service (``tandem serve console``, port 8006), with no database.

Jinja2 templates (``templates/``, autoescaped, one folder per page family) rendered from the
same APIs a user could call with their own token; user-facing text through gettext, in English
and Simplified Chinese (``locale/``). See docs/console.md.
"""
